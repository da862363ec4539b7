//! The expositions of the fleet's series (the Prometheus text format 0.0.4, OpenMetrics,
//! and the protobuf format), written straight from the model's arrays: each server's
//! labels are rendered once, and a scrape only copies bytes and formats numbers.

mod series;
mod signals;
mod text;

mod label_cache;
mod labels;
mod negotiate;
mod protobuf;

pub use label_cache::{LabelCache, RenderLabels};
pub use labels::{
    ConstLabels, MAX_LABELS, MAX_TEXT_BYTES, OWN_LABELS, check_text, parse_flag as parse_label,
};
pub use negotiate::{Format, Negotiated, negotiate};
pub use protobuf::{
    NATIVE_SCHEMA, PROTOBUF_CONTENT_TYPE, encode_fleet_protobuf, native_counts, native_first_index,
};
pub use series::{
    BUCKET_COUNT, Dimension, Extra, Family, HistogramSample, Kind, Part, Read, STATUSES,
    SeriesSink, Signal, bucket_bounds, visit_family, visit_family_servers,
};
pub use text::{
    CONTENT_TYPE, FleetLabels, OPENMETRICS_CONTENT_TYPE, Piece, SampleWriter, ScrapeLabels,
    ServerLabels, TextFormat, encode_fleet, encode_fleet_openmetrics, encode_piece, pieces,
};
