//! Carbon estimation from energy: grid intensity, PUE and uncertainty (see issue "Carbon estimator").
