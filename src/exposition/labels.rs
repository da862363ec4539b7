//! Constant labels added to every series of the fleet (`--label env=test`), as load
//! tests tag what they send: checked once, then rendered by each encoder with the
//! server's own labels.

/// The labels the fleet's series carry themselves: a constant label may not take them.
pub const OWN_LABELS: [&str; 7] = ["server", "dc", "role", "le", "status", "kind", "target"];

/// Constant labels, sorted by name, each name once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConstLabels {
    pairs: Vec<(String, String)>,
}

/// The longest label name or value, and name of a datacenter, in bytes: each is written
/// on every series of every scrape, so a long one multiplies a scrape's size.
pub const MAX_TEXT_BYTES: usize = 128;

/// The most constant labels: each is on every series.
pub const MAX_LABELS: usize = 32;

/// Checks a label value or a name the fleet's series carry (a datacenter's): at most
/// [`MAX_TEXT_BYTES`], printable (a control character would be escaped in every exposition
/// and quoted in every CSV row). The message does not repeat a long text.
pub fn check_text(text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "is {} bytes long, past the {MAX_TEXT_BYTES} allowed",
            text.len()
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "`{}` holds the control character {c:?}",
            text.escape_debug()
        ));
    }
    Ok(())
}

/// Checks a label name: Prometheus' syntax, not reserved, not one of the fleet's own.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "a label name is {} bytes long, past the {MAX_TEXT_BYTES} allowed",
            name.len()
        ));
    }
    let mut chars = name.chars();
    let valid = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if !valid {
        return Err(format!(
            "label name `{name}` is not valid: it must match [a-zA-Z_][a-zA-Z0-9_]*"
        ));
    }
    if name.starts_with("__") {
        return Err(format!(
            "label name `{name}` starts with `__`, which Prometheus reserves"
        ));
    }
    if OWN_LABELS.contains(&name) {
        return Err(format!(
            "label name `{name}` is one of the fleet's own labels ({})",
            OWN_LABELS.join(", ")
        ));
    }
    Ok(())
}

fn check_value(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        // Prometheus reads an empty value as no label at all.
        return Err(format!("label `{name}` has an empty value"));
    }
    check_text(value).map_err(|e| format!("the value of label `{name}` {e}"))
}

/// `NAME=VALUE`, as `--label` takes it.
pub fn parse_flag(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not a label; write it like env=test"))?;
    check_name(name)?;
    check_value(name, value)?;
    Ok((name.to_string(), value.to_string()))
}

impl ConstLabels {
    /// The labels of `pairs`, checked; a name given twice is an error.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Result<ConstLabels, String> {
        let mut labels = ConstLabels::default();
        for (name, value) in pairs {
            check_name(&name)?;
            check_value(&name, &value)?;
            if labels.get(&name).is_some() {
                return Err(format!("label `{name}` is given twice"));
            }
            labels.pairs.push((name, value));
            if labels.pairs.len() > MAX_LABELS {
                return Err(format!("more than {MAX_LABELS} labels"));
            }
        }
        labels.pairs.sort();
        Ok(labels)
    }

    /// These labels with `over`'s laid on top: a name in both takes `over`'s value (flags
    /// over the config file).
    pub fn overridden_by(&self, over: &ConstLabels) -> ConstLabels {
        let mut pairs: Vec<(String, String)> = self
            .pairs
            .iter()
            .filter(|(name, _)| over.get(name).is_none())
            .cloned()
            .collect();
        pairs.extend(over.pairs.iter().cloned());
        pairs.sort();
        ConstLabels { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The labels, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn names_follow_prometheus_and_avoid_the_fleets_own() {
        for good in ["env", "_x", "Zone", "a1_b2"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for (bad, says) in [
            ("1env", "must match"),
            ("en-v", "must match"),
            ("", "must match"),
            ("__name__", "reserves"),
            ("__x", "reserves"),
            ("server", "fleet's own"),
            ("le", "fleet's own"),
            ("target", "fleet's own"),
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn flags_parse_and_duplicates_are_refused() {
        assert_eq!(parse_flag("env=a=b"), Ok(pair("env", "a=b")));
        assert!(parse_flag("env").unwrap_err().contains("like env=test"));
        assert!(parse_flag("env=").unwrap_err().contains("empty"));
        let e = ConstLabels::new([pair("b", "1"), pair("b", "2")]).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let l = ConstLabels::new([pair("b", "1"), pair("a", "2")]).unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "1")]);
    }

    #[test]
    fn names_and_values_are_bounded_and_printable() {
        let long = "v".repeat(MAX_TEXT_BYTES);
        assert_eq!(check_value("env", &long), Ok(()));
        let e = check_value("env", &format!("{long}v")).unwrap_err();
        assert!(e.contains("129 bytes") && e.contains("128"), "{e}");
        assert!(e.len() < 100, "the value is not repeated: {e}");
        let e = check_name(&"n".repeat(60_000)).unwrap_err();
        assert!(e.contains("60000 bytes") && e.len() < 100, "{e}");
        let e = check_value("env", "a\nb").unwrap_err();
        assert!(e.contains("control character") && !e.contains('\n'), "{e}");
        assert_eq!(check_value("env", "é zone ☃"), Ok(()));
        let many = (0..=MAX_LABELS).map(|i| pair(&format!("l{i}"), "x"));
        let e = ConstLabels::new(many).unwrap_err();
        assert!(e.contains("more than 32"), "{e}");
        let most = (0..MAX_LABELS).map(|i| pair(&format!("l{i}"), "x"));
        assert_eq!(ConstLabels::new(most).unwrap().len(), MAX_LABELS);
    }

    #[test]
    fn flags_override_the_file() {
        let file = ConstLabels::new([pair("env", "file"), pair("team", "x")]).unwrap();
        let flags = ConstLabels::new([pair("env", "flag")]).unwrap();
        let l = file.overridden_by(&flags);
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            [("env", "flag"), ("team", "x")]
        );
    }
}
