//! The Prometheus text exposition (format 0.0.4) of the fleet's series, written straight
//! from the model's arrays: each server's label text is rendered once, and a scrape only
//! copies bytes and formats numbers.

mod series;
mod text;

mod labels;
mod negotiate;

pub use labels::{ConstLabels, OWN_LABELS, parse_flag as parse_label};

pub use negotiate::{Negotiated, negotiate};
pub use series::{
    BUCKET_COUNT, Extra, Family, Part, STATUSES, SeriesSink, bucket_bounds, visit_family,
};
pub use text::{
    CONTENT_TYPE, FleetLabels, OPENMETRICS_CONTENT_TYPE, SampleWriter, encode_fleet,
    encode_fleet_openmetrics,
};
