//! Pod names and namespaces by pod UID (pure): a Kubernetes `PodList` (the kubelet's `/pods`,
//! or the API server's `/api/v1/pods?fieldSelector=spec.nodeName=<node>`) read into a
//! [`PodDirectory`].
//!
//! Only `kind` and `items[].metadata.{uid, name, namespace, annotations}` are read; every other
//! field is ignored, so the kubelet's full pod objects parse as well as trimmed ones. A static
//! pod is listed by the kubelet under the UID its cgroup carries (the config hash); the API
//! server lists its mirror pod under another UID, with that hash in the
//! `kubernetes.io/config.mirror` annotation, so both are indexed.
//!
//! A refreshed directory keeps pods that left the list for a while ([`PodDirectory::refreshed`]):
//! their exited processes stay in the agent's store for `--retention`, and a pod's metric
//! series would otherwise lose its names (and so change its label set) before it ends.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Deserialize;

/// Annotation naming, on a mirror pod, the UID of the static pod it mirrors.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Most pods taken from one list (a kubelet runs 110 by default, 250 at most in practice); a
/// list that is larger is someone else's (a cluster-wide list without a node filter).
pub const MAX_PODS: usize = 5_000;

/// Why a response is not a usable pod list.
#[derive(Debug, thiserror::Error)]
pub enum PodListError {
    /// Not JSON, or JSON of another shape.
    #[error("the response is not a Kubernetes PodList in JSON")]
    Json(#[source] serde_json::Error),
    /// JSON of another kind (a `Status` carries a message).
    #[error("expected kind `PodList`, got {}", found(.kind, .message))]
    NotPodList {
        /// The `kind` found, if any.
        kind: Option<String>,
        /// The object's `message` (a `Status`'s reason), if any.
        message: Option<String>,
    },
    /// More pods than one node runs.
    #[error(
        "the list has {count} pods, more than one node runs (at most {MAX_PODS}); filter it by node (fieldSelector=spec.nodeName=…)"
    )]
    TooMany {
        /// Pods listed.
        count: usize,
    },
}

/// `kind `Status`: <message>` or `no kind`.
fn found(kind: &Option<String>, message: &Option<String>) -> String {
    let kind = kind
        .as_deref()
        .map_or("no kind".to_owned(), |k| format!("kind `{k}`"));
    match message {
        Some(m) => format!("{kind}: {m}"),
        None => kind,
    }
}

/// A pod's name and namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodName {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

#[derive(Deserialize)]
struct PodList {
    kind: Option<String>,
    #[serde(default)]
    items: Option<Vec<Item>>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    metadata: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    uid: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    annotations: Option<HashMap<String, String>>,
}

/// The pods of a `PodList` as `(uid, name)` pairs, UIDs lowercased; a mirror pod also under
/// its static pod's UID. Items without a UID or a name are skipped; a missing namespace is
/// `default`.
pub fn parse_pod_list(json: &str) -> Result<Vec<(String, PodName)>, PodListError> {
    let list: PodList = serde_json::from_str(json).map_err(PodListError::Json)?;
    if list.kind.as_deref() != Some("PodList") {
        return Err(PodListError::NotPodList {
            kind: list.kind,
            message: list.message,
        });
    }
    let items = list.items.unwrap_or_default();
    if items.len() > MAX_PODS {
        return Err(PodListError::TooMany { count: items.len() });
    }
    let mut out = Vec::with_capacity(items.len());
    for m in items.into_iter().filter_map(|i| i.metadata) {
        let (Some(uid), Some(name)) = (m.uid, m.name) else {
            continue;
        };
        let pod = PodName {
            namespace: m
                .namespace
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            name,
        };
        if let Some(hash) = m
            .annotations
            .as_ref()
            .and_then(|a| a.get(MIRROR_ANNOTATION))
        {
            out.push((hash.trim().to_ascii_lowercase(), pod.clone()));
        }
        out.push((uid.trim().to_ascii_lowercase(), pod));
    }
    Ok(out)
}

#[derive(Clone, Debug)]
struct Entry {
    pod: Arc<PodName>,
    /// When the pod was last in a fetched list.
    seen: Instant,
    /// Whether it is in the latest list.
    listed: bool,
}

/// Pod names by UID: the latest list plus pods that left it recently.
#[derive(Clone, Debug, Default)]
pub struct PodDirectory {
    by_uid: HashMap<String, Entry>,
}

impl PodDirectory {
    /// A directory of `pods` (as listed at `now`).
    pub fn new(pods: Vec<(String, PodName)>, now: Instant) -> PodDirectory {
        PodDirectory::default().refreshed(pods, now, Duration::ZERO)
    }

    /// The directory after a fetch at `now` listed `pods`: those are current; pods of `self`
    /// missing from the list are kept if they were last listed less than `keep` ago.
    pub fn refreshed(&self, pods: Vec<(String, PodName)>, now: Instant, keep: Duration) -> Self {
        let mut by_uid: HashMap<String, Entry> = pods
            .into_iter()
            .map(|(uid, pod)| {
                let entry = Entry {
                    pod: Arc::new(pod),
                    seen: now,
                    listed: true,
                };
                (uid, entry)
            })
            .collect();
        for (uid, e) in &self.by_uid {
            if !by_uid.contains_key(uid) && now.saturating_duration_since(e.seen) < keep {
                let gone = Entry {
                    listed: false,
                    ..e.clone()
                };
                by_uid.insert(uid.clone(), gone);
            }
        }
        PodDirectory { by_uid }
    }

    /// The pod of a UID (lowercase, with dashes, as [`super::cgroup::labels`] reads it).
    pub fn get(&self, uid: &str) -> Option<&PodName> {
        self.by_uid.get(uid).map(|e| e.pod.as_ref())
    }

    /// The UID of `namespace/name`: the listed pod, else the one listed last (a StatefulSet's
    /// pod keeps its name across UIDs).
    pub fn uid_of(&self, namespace: &str, name: &str) -> Option<&str> {
        self.by_uid
            .iter()
            .filter(|(_, e)| e.pod.namespace == namespace && e.pod.name == name)
            .max_by_key(|(uid, e)| (e.listed, e.seen, std::cmp::Reverse(uid.as_str())))
            .map(|(uid, _)| uid.as_str())
    }

    /// UIDs known (listed or kept).
    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    /// Whether no pod is known.
    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }

    /// UIDs in the latest list.
    pub fn listed(&self) -> usize {
        self.by_uid.values().filter(|e| e.listed).count()
    }
}

/// Splits `namespace/name` (the form `kubectl` prints); `None` unless both parts are non-empty.
pub fn split_pod_ref(text: &str) -> Option<(&str, &str)> {
    let (ns, name) = text.trim().split_once('/')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then_some((ns, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBELET: &str = include_str!("../../tests/fixtures/kubelet-pods.json");

    fn name(ns: &str, n: &str) -> PodName {
        PodName {
            namespace: ns.into(),
            name: n.into(),
        }
    }

    /// A kubelet-shaped list written by hand: full pod objects (spec, status, managed fields),
    /// a Deployment's pod, a static pod under its config hash, a DaemonSet's, a finished Job's.
    #[test]
    fn a_kubelet_shaped_list() -> Result<(), PodListError> {
        let pods = parse_pod_list(KUBELET)?;
        assert_eq!(pods.len(), 4);
        let d = PodDirectory::new(pods, Instant::now());
        assert_eq!(
            d.get("6f0b1c2e-4d3a-4b5c-9e8f-0123456789ab"),
            Some(&name("shop", "web-7d9f8b6c5-x2x9q"))
        );
        // A static pod, under its config hash (what its cgroup path carries).
        assert_eq!(
            d.get("8a1f3c5e7b9d0f2a4c6e8b0d2f4a6c8e"),
            Some(&name("kube-system", "etcd-node-1"))
        );
        assert_eq!(
            d.get("3c9e1f7a-5b2d-4e8c-a6f0-1d3b5c7e9a2f"),
            Some(&name("default", "batch-report-29403120-vk4mb"))
        );
        assert_eq!(
            d.uid_of("kube-system", "kube-proxy-q7lmz"),
            Some("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
        );
        assert_eq!(d.uid_of("shop", "kube-proxy-q7lmz"), None);
        assert_eq!(d.get("ffffffff-4d3a-4b5c-9e8f-0123456789ab"), None);
        Ok(())
    }

    #[test]
    fn mirror_pods_missing_fields_and_case() -> Result<(), PodListError> {
        // The API server's view of a static pod: its own UID, the cgroup's in the annotation.
        let json = r#"{"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"},
          "items": [
            {"metadata": {"name": "etcd-node-1", "namespace": "kube-system",
              "uid": "d2c1b0a9-8f7e-4d6c-9b5a-493827160514",
              "annotations": {"kubernetes.io/config.mirror": "8a1f3c5e7b9d0f2a4c6e8b0d2f4a6c8e"}}},
            {"metadata": {"name": "no-uid", "namespace": "x"}},
            {"metadata": {"uid": "00000000-0000-4000-8000-000000000000"}},
            {"spec": {}},
            {"metadata": {"name": "upper", "uid": " ABCDEF01-2345-4678-9ABC-DEF012345678 "}, "extra": [1, 2]}
          ]}"#;
        let d = PodDirectory::new(parse_pod_list(json)?, Instant::now());
        let etcd = name("kube-system", "etcd-node-1");
        assert_eq!(d.get("8a1f3c5e7b9d0f2a4c6e8b0d2f4a6c8e"), Some(&etcd));
        assert_eq!(d.get("d2c1b0a9-8f7e-4d6c-9b5a-493827160514"), Some(&etcd));
        assert_eq!(
            d.get("abcdef01-2345-4678-9abc-def012345678"),
            Some(&name("default", "upper"))
        );
        assert_eq!(d.len(), 3);
        Ok(())
    }

    #[test]
    fn other_documents_are_refused() {
        let status = r#"{"kind": "Status", "apiVersion": "v1", "status": "Failure",
          "message": "nodes \"node-1\" is forbidden: User \"system:serviceaccount:carbon-ops:carbon-ops-agent\" cannot get resource \"nodes/proxy\"",
          "reason": "Forbidden", "code": 403}"#;
        let e = parse_pod_list(status).expect_err("a Status is not a PodList");
        assert!(
            matches!(&e, PodListError::NotPodList { kind: Some(k), message: Some(m) } if k == "Status" && m.contains("nodes/proxy")),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("expected kind `PodList`, got kind `Status`: nodes")
        );
        for text in [
            "",
            "<html>502 Bad Gateway</html>",
            "[]",
            "{\"items\": 3, \"kind\": \"PodList\"}",
        ] {
            assert!(
                matches!(parse_pod_list(text), Err(PodListError::Json(_))),
                "{text}"
            );
        }
        assert!(matches!(
            parse_pod_list("{\"items\": []}"),
            Err(PodListError::NotPodList { kind: None, .. })
        ));
        let empty = parse_pod_list(r#"{"kind": "PodList", "items": null}"#).expect("empty list");
        assert!(empty.is_empty());
        let many = format!(
            r#"{{"kind": "PodList", "items": [{}]}}"#,
            vec!["{}"; MAX_PODS + 1].join(",")
        );
        assert!(matches!(
            parse_pod_list(&many),
            Err(PodListError::TooMany { count }) if count == MAX_PODS + 1
        ));
    }

    #[test]
    fn pods_that_leave_are_kept_for_a_while() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(600);
        let a = (
            "aaaa0000-0000-4000-8000-000000000000".to_owned(),
            name("ns", "web-0"),
        );
        let b = (
            "bbbb0000-0000-4000-8000-000000000000".to_owned(),
            name("ns", "job"),
        );
        let d = PodDirectory::new(vec![a.clone(), b.clone()], t0);
        assert_eq!(d.listed(), 2);
        // web-0 is recreated under a new UID; the job's pod is gone.
        let a2 = (
            "aaaa2222-0000-4000-8000-000000000000".to_owned(),
            name("ns", "web-0"),
        );
        let d = d.refreshed(vec![a2.clone()], t0 + Duration::from_secs(30), keep);
        assert_eq!((d.len(), d.listed()), (3, 1));
        assert_eq!(d.get(&b.0), Some(&b.1), "kept after it left the list");
        assert_eq!(
            d.uid_of("ns", "web-0"),
            Some(a2.0.as_str()),
            "the listed one"
        );
        let d = d.refreshed(vec![a2.clone()], t0 + Duration::from_secs(300), keep);
        assert_eq!(d.len(), 3);
        let d = d.refreshed(vec![a2.clone()], t0 + Duration::from_secs(601), keep);
        assert_eq!(d.len(), 1, "forgotten `keep` after they were last listed");
        assert_eq!(d.get(&a2.0), Some(&a2.1));
    }

    #[test]
    fn pod_refs() {
        assert_eq!(split_pod_ref("shop/web-0"), Some(("shop", "web-0")));
        assert_eq!(split_pod_ref(" shop/web-0\n"), Some(("shop", "web-0")));
        for bad in ["web-0", "/web-0", "shop/", "a/b/c", ""] {
            assert_eq!(split_pod_ref(bad), None, "{bad}");
        }
    }
}
