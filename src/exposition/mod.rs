//! The Prometheus text exposition (format 0.0.4) of the fleet's series, written straight
//! from the model's arrays: each server's label text is rendered once, and a scrape only
//! copies bytes and formats numbers.

mod text;

mod negotiate;

pub use negotiate::{Negotiated, negotiate};
pub use text::{
    CONTENT_TYPE, Family, FleetLabels, OPENMETRICS_CONTENT_TYPE, SampleWriter, encode_fleet,
    encode_fleet_openmetrics,
};
