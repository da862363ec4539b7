//! Each server's labels, rendered once for an encoder and kept until churn puts a new
//! machine, with a new name, in the server's slot. Every sink (the text and protobuf
//! expositions, remote write 1.0 and 2.0, the CSV history) keeps its labels in a
//! [`LabelCache`]; what differs is only what a server's labels are rendered as, which a
//! [`RenderLabels`] says.

use std::fmt::Debug;

use crate::model::{Frame, Member, shape};

/// How an encoder renders one server's labels.
pub trait RenderLabels {
    /// A server's labels as the encoder copies them into each of its series.
    type Rendered: Clone + Debug;

    /// Whether a renamed machine makes every server be rendered again, rather than only
    /// its own: for a renderer that keeps what it rendered (an interned table of names),
    /// which would otherwise grow with every machine churn ever made.
    const RENDERS_ALL_AGAIN: bool = false;

    /// Server `member`'s labels, its machine named `name`.
    fn render(&mut self, member: &Member, name: &str) -> Self::Rendered;

    /// Forgets what was rendered, before every server is rendered again
    /// ([`Self::RENDERS_ALL_AGAIN`]).
    fn forget_servers(&mut self) {}
}

/// The servers' rendered labels, and which machines they name.
#[derive(Debug, Clone)]
pub struct LabelCache<R: RenderLabels> {
    renderer: R,
    servers: Vec<R::Rendered>,
    members: Vec<Member>,
    /// When each server's rendered machine was born (`shape::ORIGINAL` for the first).
    born_ms: Vec<i64>,
}

impl<R: RenderLabels> LabelCache<R> {
    /// The labels of `members`' first machines.
    pub fn render(members: &[Member], renderer: R) -> LabelCache<R> {
        LabelCache::render_born(members, vec![shape::ORIGINAL; members.len()], renderer)
    }

    /// The labels of the machines born at `born_ms` in `members`' slots.
    pub fn render_born(members: &[Member], born_ms: Vec<i64>, mut renderer: R) -> LabelCache<R> {
        let servers = members
            .iter()
            .zip(&born_ms)
            .map(|(m, &born)| renderer.render(m, &shape::identity(&m.name, born)))
            .collect();
        LabelCache {
            renderer,
            servers,
            members: members.to_vec(),
            born_ms,
        }
    }

    /// Whether the labels are those of `frame`'s machines.
    pub fn is_current(&self, frame: &Frame) -> bool {
        self.born_ms == frame.roster.born_ms
    }

    /// Renders again the labels of the servers whose machine `frame` shows is not the one
    /// rendered: only those, so that churn costs what it changes (or all of them, for a
    /// renderer that asks it).
    pub fn refresh(&mut self, frame: &Frame) {
        if R::RENDERS_ALL_AGAIN {
            if !self.is_current(frame) {
                self.renderer.forget_servers();
                self.born_ms.clone_from(&frame.roster.born_ms);
                for (i, m) in self.members.iter().enumerate() {
                    let name = shape::identity(&m.name, self.born_ms[i]);
                    self.servers[i] = self.renderer.render(m, &name);
                }
            }
            return;
        }
        for (i, name) in shape::renamed(&self.members, &mut self.born_ms, &frame.roster) {
            self.servers[i] = self.renderer.render(&self.members[i], &name);
        }
    }

    /// Server `i`'s labels.
    #[inline]
    pub fn server(&self, i: usize) -> &R::Rendered {
        &self.servers[i]
    }

    /// Every server's labels, in the members' order.
    pub fn servers(&self) -> &[R::Rendered] {
        &self.servers
    }

    /// What renders the labels, and what it keeps for every server (names, constant
    /// labels).
    #[inline]
    pub fn renderer(&self) -> &R {
        &self.renderer
    }

    /// When each server's rendered machine was born.
    pub fn born_ms(&self) -> &[i64] {
        &self.born_ms
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FleetParams, FleetSpec, ShapeSpec, Timeline, members};

    /// Renders a server as its name, counting the renders.
    #[derive(Debug, Clone, Default)]
    struct Names {
        renders: usize,
        forgotten: usize,
    }

    impl RenderLabels for Names {
        type Rendered = String;
        fn render(&mut self, _member: &Member, name: &str) -> String {
            self.renders += 1;
            name.to_string()
        }
        fn forget_servers(&mut self) {
            self.forgotten += 1;
        }
    }

    #[derive(Debug, Clone, Default)]
    struct AllNames(Names);

    impl RenderLabels for AllNames {
        type Rendered = String;
        const RENDERS_ALL_AGAIN: bool = true;
        fn render(&mut self, member: &Member, name: &str) -> String {
            self.0.render(member, name)
        }
        fn forget_servers(&mut self) {
            self.0.forget_servers();
        }
    }

    fn churning(servers: u32) -> (Vec<Member>, Timeline) {
        let params = FleetParams::default();
        let fleet = members(&params, servers, 0..servers);
        let spec = ShapeSpec {
            churn: 0.2,
            churn_interval: std::time::Duration::from_secs(600),
            ..ShapeSpec::default()
        };
        let timeline = FleetSpec::new(&params, 3, fleet.clone())
            .shape(spec)
            .counting(Default::default())
            .timeline(T0);
        (fleet, timeline)
    }

    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn only_renamed_machines_are_rendered_again_unless_the_renderer_asks_for_all() {
        let (fleet, mut timeline) = churning(40);
        let mut some = LabelCache::render(&fleet, Names::default());
        let mut all = LabelCache::render(&fleet, AllNames::default());
        assert_eq!(some.renderer().renders, 40);
        for at in [T0, T0 + 600_000, T0 + 1_200_000] {
            let frame = timeline.at(at);
            let changed = (0..fleet.len())
                .filter(|&i| some.born_ms()[i] != frame.born_ms(i))
                .count();
            let before = (some.renderer().renders, all.renderer().0.renders);
            some.refresh(&frame);
            all.refresh(&frame);
            assert!(some.is_current(&frame) && all.is_current(&frame));
            assert_eq!(some.renderer().renders, before.0 + changed);
            let everyone = if changed > 0 { fleet.len() } else { 0 };
            assert_eq!(all.renderer().0.renders, before.1 + everyone);
            for (i, m) in fleet.iter().enumerate() {
                let name = shape::identity(&m.name, frame.born_ms(i));
                assert_eq!(some.server(i), &name);
                assert_eq!(all.server(i), &name);
            }
        }
        assert!(all.renderer().0.forgotten > 0);
    }
}
