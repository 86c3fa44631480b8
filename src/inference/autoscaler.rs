//! Target-tracking autoscaling (AWS Application Auto Scaling rules).
