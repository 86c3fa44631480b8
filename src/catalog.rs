//! The built-in instance catalog, `models/catalog.toml`, compiled into the
//! binary so that it works from any folder.

use std::sync::OnceLock;

use serde::Deserialize;

const CATALOG_TOML: &str = include_str!("../models/catalog.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub source: Source,
    #[serde(rename = "instance")]
    pub instances: Vec<Instance>,
    pub serverless: ServerlessPrices,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub prices: String,
    pub retrieved: String,
    pub region: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub name: String,
    pub vcpus: u32,
    pub memory_gib: f64,
    pub gpus: u32,
    pub gpu: String,
    /// On-demand USD per instance-hour.
    pub price_per_hour: f64,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerlessPrices {
    pub compute_per_gb_second: f64,
    pub request_price: f64,
    pub provisioned_per_gb_second: f64,
    pub provisioned_compute_per_gb_second: f64,
    pub memory_sizes_gb: Vec<u32>,
    pub source: String,
    pub retrieved: String,
}

/// The catalog, parsed once. The file is part of the build and checked by a
/// test, so a parse failure here is a bug, not bad input.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| toml::from_str(CATALOG_TOML).expect("models/catalog.toml is valid"))
}

impl Catalog {
    pub fn find(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.instances.iter().map(|i| i.name.as_str())
    }

    /// The table `spotsim catalog` prints.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<18} {:>5} {:>9} {:>5}  {:<24} {:>10}\n",
            "instance", "vcpus", "memory", "gpus", "gpu", "usd/hour"
        );
        for i in &self.instances {
            let gpu = if i.gpu.is_empty() { "-" } else { &i.gpu };
            out += &format!(
                "{:<18} {:>5} {:>6} GiB {:>5}  {:<24} {:>10.4}\n",
                i.name, i.vcpus, i.memory_gib, i.gpus, gpu, i.price_per_hour
            );
        }
        out += &format!(
            "\nOn-demand prices in {}, {}; figures of {}.\n",
            self.source.region, self.source.prices, self.source.retrieved
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_the_required_instances() {
        let c = catalog();
        for name in [
            "ml.p3.2xlarge",
            "ml.p3.8xlarge",
            "ml.p4d.24xlarge",
            "ml.g4dn.xlarge",
            "ml.g5.xlarge",
            "ml.g5.12xlarge",
            "ml.c5.xlarge",
            "ml.c5.2xlarge",
            "ml.m5.xlarge",
        ] {
            let i = c.find(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(i.price_per_hour > 0.0 && i.vcpus > 0 && i.memory_gib > 0.0, "{name}");
        }
        assert_eq!(c.find("ml.p3.2xlarge").unwrap().price_per_hour, 3.825);
        assert!(c.render().contains("ml.g5.12xlarge"));
    }
}
