//! Availability zones and their outage processes.
