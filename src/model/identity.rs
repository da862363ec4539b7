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
