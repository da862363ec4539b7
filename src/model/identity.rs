//! Who the servers are: names, roles and datacenters, decided by a server's index alone.
//!
//! Roles are declared with their parameters (`params.rs`, which is keyed by role); this
//! file deals them out to the servers.

use std::ops::Range;

use super::params::FleetParams;
pub use super::params::Role;

/// One server's identity. Its index alone decides its name, role and datacenter, so a larger
/// fleet only adds servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub index: u32,
    pub name: String,
    pub role: Role,
    pub dc: String,
    /// The size of the whole fleet this server belongs to (a process may simulate only a
    /// slice of it): what fleet-wide draws, such as random incidents' targets, range over.
    pub fleet_size: u32,
}

/// The servers of a fleet of `size` servers, those with indices in `range`.
///
/// Roles follow a smooth weighted round robin over the roles' weights: any stretch of the
/// fleet holds the roles in proportion (weights 3, 3, 1, 1, 2 put all five roles in every
/// ten servers), and a server's role depends only on its index, never on the fleet size.
pub fn members(params: &FleetParams, size: u32, range: Range<u32>) -> Vec<Member> {
    let width = name_width(size);
    let weights: Vec<f64> = Role::ALL
        .iter()
        .map(|&r| params.roles.get(r).weight.max(0.0))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut credit = vec![0.0; weights.len()];
    let mut role_of_next = move || {
        for (c, w) in credit.iter_mut().zip(&weights) {
            *c += w;
        }
        let (best, _) =
            credit.iter().enumerate().fold(
                (0, f64::MIN),
                |acc, (i, &c)| if c > acc.1 { (i, c) } else { acc },
            );
        credit[best] -= total;
        Role::ALL[best]
    };
    let dcs = &params.datacenters;
    (0..range.end)
        .map(|index| (index, role_of_next()))
        .filter(|(index, _)| range.contains(index))
        .map(|(index, role)| Member {
            index,
            name: server_name(index, width),
            role,
            dc: dcs[index as usize % dcs.len()].clone(),
            fleet_size: size,
        })
        .collect()
}

/// How many digits server numbers have in a fleet of `size`: enough for the largest, and at
/// least two, so that names sort.
pub fn name_width(size: u32) -> usize {
    size.max(1).to_string().len().max(2)
}

/// The name of the server with `index`, its number padded to `width` digits: `srv-03`.
pub fn server_name(index: u32, width: usize) -> String {
    format!("srv-{:0width$}", index as u64 + 1)
}

/// The position in `members` of the server with index `index`: direct when the members
/// are a fleet's servers in order (the usual case), by search otherwise.
pub fn position_of(members: &[Member], index: u32) -> Option<usize> {
    let direct = members
        .first()
        .and_then(|m| index.checked_sub(m.index))
        .map(|offset| offset as usize);
    if let Some(p) = direct
        && members.get(p).is_some_and(|m| m.index == index)
    {
        return Some(p);
    }
    members.iter().position(|m| m.index == index)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 9. Names and roles.

    #[test]
    fn names_are_padded_to_the_fleet_size() {
        let params = FleetParams::default();
        let names = |size: u32, range| -> Vec<String> {
            members(&params, size, range)
                .into_iter()
                .map(|m| m.name)
                .collect()
        };
        let ten = names(10, 0..10);
        assert_eq!(ten.first().unwrap(), "srv-01");
        assert_eq!(ten[8], "srv-09");
        assert_eq!(ten.last().unwrap(), "srv-10");
        assert_eq!(names(1, 0..1), ["srv-01"]);
        assert_eq!(names(9, 8..9), ["srv-09"]);
        assert_eq!(names(100, 0..1), ["srv-001"]);
        assert_eq!(names(100, 99..100), ["srv-100"]);
        assert_eq!(names(101, 0..1), ["srv-001"]);
        assert_eq!(names(10_000, 0..1), ["srv-00001"]);
        assert_eq!(names(10_000, 9_999..10_000), ["srv-10000"]);
        let all = members(&params, 10_000, 0..10_000);
        let mut unique: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10_000);
        for (i, m) in all.iter().enumerate() {
            assert_eq!(m.index as usize, i);
            assert_eq!(m.dc, params.datacenters[i % 3]);
        }
    }

    #[test]
    fn roles_are_spread_by_weight() {
        let params = FleetParams::default();
        let all = members(&params, 1_000, 0..1_000);
        let total: f64 = Role::ALL.iter().map(|&r| params.roles.get(r).weight).sum();
        for role in Role::ALL {
            let count = all.iter().filter(|m| m.role == role).count() as f64;
            let expected = 1_000.0 * params.roles.get(role).weight / total;
            assert!(
                (count - expected).abs() < 0.1 * expected + 5.0,
                "{} servers: {count}, expected {expected}",
                role.name()
            );
        }
        let web = all.iter().filter(|m| m.role == Role::Web).count() as f64 / 1_000.0;
        assert!((web - 0.3).abs() < 0.03, "web share {web}");
        // Any ten consecutive servers hold the roles in proportion to the weights 3, 3, 1, 1, 2.
        for window in all.windows(10) {
            for role in Role::ALL {
                let count = window.iter().filter(|m| m.role == role).count() as f64;
                assert_eq!(
                    count,
                    params.roles.get(role).weight,
                    "{} servers in {}..={}",
                    role.name(),
                    window[0].name,
                    window[9].name
                );
            }
        }

        // A role of weight 0 is left out.
        let mut no_db = params.clone();
        no_db.roles.db.weight = 0.0;
        assert!(
            members(&no_db, 1_000, 0..1_000)
                .iter()
                .all(|m| m.role != Role::Db)
        );
    }
}
