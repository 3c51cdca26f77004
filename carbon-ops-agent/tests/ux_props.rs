//! Properties of the pure `ux` parts: the SVG writer yields well-formed XML whatever the
//! labels and numbers; the counter-level miss count equals the arithmetic for any power,
//! range, phase and period; the per-process split always accounts for all the energy.

use carbon_ops::ux::{
    aliasing::{counter, procs},
    svg::{self, Bar, Series},
    xmlcheck,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn svg_is_well_formed_for_any_labels_and_values(
        names in prop::collection::vec(any::<String>(), 0..4),
        values in prop::collection::vec(prop_oneof![any::<f64>(), 0.0..1e6f64], 0..8),
    ) {
        let series: Vec<Series> = names
            .iter()
            .map(|n| Series {
                name: n.clone(),
                points: values.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect(),
            })
            .collect();
        let bars: Vec<Bar> = names
            .iter()
            .zip(&values)
            .map(|(n, &v)| Bar { label: n.clone(), value: v, interval: Some((v * 0.5, v * 2.0)) })
            .collect();
        let caption = names.first().cloned().unwrap_or_default();
        let doc = svg::document(
            &caption,
            &[svg::line_chart("t", "x", "y", &series), svg::bar_chart("b", "y", &bars)],
        );
        prop_assert!(xmlcheck::check(&doc).is_ok(), "{}", doc);
    }

    #[test]
    fn missed_wraps_equal_the_arithmetic(
        power_w in 1u64..400,
        range_uj in 1_000_000u64..2_000_000_000,
        phase in 0.0f64..1.0,
        period_s in 1u64..40,
        intervals in 1u64..4,
    ) {
        // The agent must see every wrap: at most one range per 100 ms read.
        prop_assume!(power_w * 100_000 < range_uj);
        let start = (range_uj as f64 * phase) as u64;
        let (r, _, _) = counter::simulate(
            power_w * 1_000_000, range_uj, start, period_s * 1000, 100, period_s * 1000 * intervals,
        );
        let per = power_w * 1_000_000 * period_s / (range_uj + 1);
        prop_assert_eq!(r.missed_arithmetic(), per * intervals);
        prop_assert_eq!(r.wraps_missed, r.missed_arithmetic());
        prop_assert_eq!(r.agent_uj, r.true_uj);
        prop_assert_eq!(r.true_uj - r.scraper_uj, r.wraps_missed * (range_uj + 1));
    }

    #[test]
    fn the_split_accounts_for_all_the_energy(seed in any::<u64>(), secs in 1u64..60, scrape in 1u64..20) {
        let jobs = procs::demo_jobs(secs * 1000, seed);
        let r = procs::simulate(&jobs, secs * 1000, 100, scrape * 1000);
        for s in [r.agent, r.scraper] {
            prop_assert_eq!(s.right_uj + s.wrong_uj + s.no_one_uj, r.total_uj);
        }
        prop_assert_eq!(r.rows.iter().map(|x| x.true_uj).sum::<u64>(), r.total_uj);
    }
}
