//! Energy sources: RAPL via powercap sysfs or MSR, and a model source (see issue "Energy sources").
