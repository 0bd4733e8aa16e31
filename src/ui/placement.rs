//! Where the topology's packet labels and refusal marks go, so that nothing is printed over
//! anything else. Things that cannot move are blocked (nodes with their text, the lines of
//! text along the top); each refusal mark then takes the first of its candidate places that
//! lies inside the view and clear of those and of the strips packets fly along; then edges'
//! ends and packet dots are blocked, and each label takes the first place clear of all
//! that, with the thin line back to its packet (when it stands away from it) clear too.
//! Packets flying side by side share one label (`ping / pong`); a label with no clear place
//! is dropped rather than drawn over something. Pure geometry: text is measured by the
//! caller.

use eframe::egui::{Pos2, Rect, Vec2};

/// What a placed rectangle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A node of the topology, with its text (and its button row).
    Node,
    /// Where an edge meets a node.
    EdgeEnd,
    /// A line of text of the view itself (the heartbeat count, notes).
    Text,
    /// A packet in flight.
    Dot,
    /// Along an edge, where packets fly: marks keep off it, labels may cross it.
    Edge,
    /// The thin line from a label back to its packet.
    Leader,
    /// A refusal mark, with its count.
    Mark,
    /// A packet label.
    Label,
}

/// Rectangles taken so far.
#[derive(Debug, Clone)]
pub struct Placer {
    bounds: Rect,
    taken: Vec<(Rect, Kind)>,
    dropped: usize,
}

impl Placer {
    /// Places things inside `bounds`.
    pub fn new(bounds: Rect) -> Placer {
        Placer {
            bounds,
            taken: Vec::new(),
            dropped: 0,
        }
    }

    /// Takes `rect` whatever overlaps it (nodes, dots: they are where they are).
    pub fn block(&mut self, rect: Rect, kind: Kind) {
        self.taken.push((rect, kind));
    }

    /// Takes the first of `candidates` inside the bounds and clear of everything taken;
    /// `None` (counted as dropped) when none is.
    pub fn place(
        &mut self,
        candidates: impl IntoIterator<Item = Rect>,
        kind: Kind,
    ) -> Option<Rect> {
        let found = candidates.into_iter().find(|c| {
            self.bounds.contains_rect(*c) && !self.taken.iter().any(|(t, _)| t.intersects(*c))
        });
        match found {
            Some(rect) => self.taken.push((rect, kind)),
            None => self.dropped += 1,
        }
        found
    }

    /// Whether `rect` lies inside the bounds, clear of everything taken.
    pub fn clear(&self, rect: Rect) -> bool {
        self.bounds.contains_rect(rect) && !self.taken.iter().any(|(t, _)| t.intersects(rect))
    }

    /// Takes the first of `candidates` that is clear, and whose leader line is clear too,
    /// for a label of the packet at `at` (a dot of radius `r`): a label standing more than
    /// `2r` from its packet gets a line back to it, from the dot's edge to just short of the
    /// label, which nothing may cross (but the dots at `at`, its own among them).
    /// Returns the label's place and its line.
    pub fn place_label(
        &mut self,
        candidates: impl IntoIterator<Item = Rect>,
        at: Pos2,
        r: f32,
    ) -> Option<(Rect, Option<(Pos2, Pos2)>)> {
        const LINE: f32 = 3.0;
        for c in candidates {
            if !self.clear(c) {
                continue;
            }
            let nearest = Pos2::new(
                at.x.clamp(c.left(), c.right()),
                at.y.clamp(c.top(), c.bottom()),
            );
            let gap = nearest.distance(at);
            let leader = (gap > 2.0 * r).then(|| {
                let dir = (nearest - at) / gap;
                (at + dir * (r + LINE), nearest - dir * LINE)
            });
            if let Some((a, b)) = leader {
                let crossed = corridor(a, b, LINE).any(|square| {
                    self.taken.iter().any(|(t, kind)| {
                        !(*kind == Kind::Dot && t.contains(at)) && t.intersects(square)
                    })
                });
                if crossed {
                    continue;
                }
            }
            self.taken.push((c, Kind::Label));
            if let Some((a, b)) = leader {
                self.taken
                    .extend(corridor(a, b, LINE).map(|square| (square, Kind::Leader)));
            }
            return Some((c, leader));
        }
        self.dropped += 1;
        None
    }

    /// Gives back what was taken as `kind`.
    pub fn forget(&mut self, kind: Kind) {
        self.taken.retain(|(_, k)| *k != kind);
    }

    /// Everything taken, in order.
    pub fn taken(&self) -> &[(Rect, Kind)] {
        &self.taken
    }

    /// Everything taken, in order, handed over.
    pub fn into_taken(self) -> Vec<(Rect, Kind)> {
        self.taken
    }

    /// How many things found no place.
    pub fn dropped(&self) -> usize {
        self.dropped
    }
}

/// Squares `width` wide along the segment from `a` to `b`, close enough to cover it: where
/// a packet of that width can be.
pub fn corridor(a: Pos2, b: Pos2, width: f32) -> impl Iterator<Item = Rect> {
    let steps = (a.distance(b) / (width * 0.5).max(1.0)).ceil().max(1.0) as usize;
    (0..=steps).map(move |i| {
        Rect::from_center_size(a.lerp(b, i as f32 / steps as f32), Vec2::splat(width))
    })
}

/// Places for a label `size` big beside a dot of radius `r` at `at` that moves along the
/// unit vector `along`: beside the dot first, then staggered along its edge.
pub fn label_candidates(at: Pos2, r: f32, size: Vec2, along: Vec2) -> Vec<Rect> {
    let gap = 2.0;
    let beside = [
        Vec2::new(r + gap, -r - size.y),
        Vec2::new(r + gap, r),
        Vec2::new(-r - gap - size.x, -r - size.y),
        Vec2::new(-r - gap - size.x, r),
        Vec2::new(-size.x / 2.0, -r - gap - size.y),
        Vec2::new(-size.x / 2.0, r + gap),
    ];
    let mut out: Vec<Rect> = beside
        .iter()
        .map(|offset| Rect::from_min_size(at + *offset, size))
        .collect();
    let across = Vec2::new(-along.y, along.x);
    let step = size.x * 0.5 + r;
    for k in 1..=3 {
        for sign in [1.0, -1.0] {
            let shifted = at + along * (sign * step * k as f32);
            for side in [1.0, -1.0] {
                let center = shifted + across * (side * (size.y / 2.0 + r + gap));
                out.push(Rect::from_center_size(center, size));
            }
        }
    }
    out
}

/// Places for a refusal mark `size` big whose place is `at`: there first, then the nearest
/// places on a grid stepping away from it (across first, and away from the node, toward
/// `away`, never toward it).
pub fn mark_candidates(at: Pos2, size: Vec2, away: Vec2) -> Vec<Rect> {
    let across = Vec2::new(-away.y, away.x);
    let (step_across, step_away) = if away.x.abs() > away.y.abs() {
        (size.y + 2.0, size.x + 2.0)
    } else {
        (size.x + 2.0, size.y + 2.0)
    };
    let mut offsets: Vec<(f32, f32)> = Vec::new();
    for out in 0..=6 {
        for side in [0, 1, -1, 2, -2, 3, -3] {
            offsets.push((out as f32, side as f32));
        }
    }
    offsets.sort_by(|a, b| {
        let d = |(o, s): (f32, f32)| (o * step_away).hypot(s * step_across);
        d(*a).total_cmp(&d(*b))
    });
    offsets
        .into_iter()
        .map(|(o, s)| {
            Rect::from_center_size(
                at + away * (o * step_away) + across * (s * step_across),
                size,
            )
        })
        .collect()
}

/// One packet in the air, to be labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Where its dot is.
    pub at: Pos2,
    /// What it carries.
    pub label: String,
    /// Going to the replica (else coming back).
    pub up: bool,
    /// Which comes first when places are few: higher first.
    pub rank: u8,
}

/// Packets sharing one label.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Where the label belongs (the first packet's dot).
    pub at: Pos2,
    /// The label.
    pub text: String,
    /// Indices of its packets, the highest ranked first.
    pub members: Vec<usize>,
    /// Its highest rank.
    pub rank: u8,
}

/// Most different labels one shared label names; beyond, it counts packets.
const NAMED_IN_A_GROUP: usize = 3;

/// Groups packets whose dots lie within `near` of a group's first dot (the highest ranked
/// first), each group with one label: a pair going opposite ways reads `a / b` (in the
/// order they come), the same
/// label twice `a ×2`, a few `a · b · c`, more `N packets`. Groups come highest rank first.
pub fn group(packets: &[Packet], near: f32) -> Vec<Group> {
    let mut order: Vec<usize> = (0..packets.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(packets[i].rank));
    let mut groups: Vec<Group> = Vec::new();
    for i in order {
        let p = &packets[i];
        match groups.iter_mut().find(|g| g.at.distance(p.at) <= near) {
            Some(g) => g.members.push(i),
            None => groups.push(Group {
                at: p.at,
                text: String::new(),
                members: vec![i],
                rank: p.rank,
            }),
        }
    }
    for g in &mut groups {
        g.text = group_text(packets, &g.members);
    }
    groups
}

fn group_text(packets: &[Packet], members: &[usize]) -> String {
    let mut distinct: Vec<(&str, usize, bool)> = Vec::new();
    for &i in members {
        let p = &packets[i];
        match distinct.iter_mut().find(|(l, _, _)| *l == p.label) {
            Some((_, n, _)) => *n += 1,
            None => distinct.push((&p.label, 1, p.up)),
        }
    }
    let named = |(label, n, _): &(&str, usize, bool)| {
        if *n > 1 {
            format!("{label} ×{n}")
        } else {
            (*label).to_owned()
        }
    };
    match distinct.as_slice() {
        [one] => named(one),
        [a, b] if a.2 != b.2 => format!("{} / {}", named(a), named(b)),
        few if few.len() <= NAMED_IN_A_GROUP => {
            few.iter().map(named).collect::<Vec<_>>().join(" · ")
        }
        _ => format!("{} packets", members.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(x: f32, label: &str, up: bool, rank: u8) -> Packet {
        Packet {
            at: Pos2::new(x, 100.0),
            label: label.into(),
            up,
            rank,
        }
    }

    #[test]
    fn a_place_is_taken_once_and_never_outside_the_bounds() {
        let mut placer = Placer::new(Rect::from_min_size(Pos2::ZERO, Vec2::splat(100.0)));
        let a = Rect::from_min_size(Pos2::new(10.0, 10.0), Vec2::splat(20.0));
        let b = Rect::from_min_size(Pos2::new(40.0, 10.0), Vec2::splat(20.0));
        let outside = Rect::from_min_size(Pos2::new(90.0, 10.0), Vec2::splat(20.0));
        assert_eq!(placer.place([a], Kind::Label), Some(a));
        assert_eq!(placer.place([a, outside, b], Kind::Label), Some(b));
        assert_eq!(placer.place([a, b, outside], Kind::Label), None);
        assert_eq!(placer.dropped(), 1);
        placer.block(a, Kind::Node);
        assert_eq!(placer.taken().len(), 3, "a block may overlap");
        placer.forget(Kind::Node);
        assert_eq!(placer.taken().len(), 2);
    }

    #[test]
    fn a_label_away_from_its_packet_keeps_a_clear_line_back_to_it() {
        let mut placer = Placer::new(Rect::from_min_size(Pos2::ZERO, Vec2::splat(400.0)));
        let at = Pos2::new(100.0, 100.0);
        placer.block(Rect::from_center_size(at, Vec2::splat(12.0)), Kind::Dot);
        // Something between the packet and the first place: that place is passed over.
        placer.block(
            Rect::from_min_size(Pos2::new(140.0, 90.0), Vec2::new(10.0, 30.0)),
            Kind::Node,
        );
        let far = Rect::from_min_size(Pos2::new(200.0, 95.0), Vec2::new(40.0, 12.0));
        let other = Rect::from_min_size(Pos2::new(100.0, 150.0), Vec2::new(40.0, 12.0));
        let (rect, leader) = placer.place_label([far, other], at, 6.0).unwrap();
        assert_eq!(rect, other);
        let (a, b) = leader.expect("a line back");
        assert!(
            a.distance(at) > 6.0 && !other.contains(b),
            "from the dot's edge, short of the label"
        );
        let next = Rect::from_min_size(Pos2::new(95.0, 125.0), Vec2::new(40.0, 12.0));
        assert!(!placer.clear(next), "the line is taken");
        // Beside its packet, no line.
        let near = Rect::from_min_size(Pos2::new(50.0, 82.0), Vec2::new(40.0, 12.0));
        assert_eq!(placer.place_label([near], at, 6.0), Some((near, None)));
    }

    #[test]
    fn labels_try_beside_the_dot_first_then_along_the_edge() {
        let at = Pos2::new(200.0, 200.0);
        let size = Vec2::new(40.0, 12.0);
        let c = label_candidates(at, 6.0, size, Vec2::X);
        assert_eq!(c.len(), 6 + 12);
        assert!(c.iter().all(|r| r.size() == size));
        let dot = Rect::from_center_size(at, Vec2::splat(12.0));
        assert!(
            c.iter().all(|r| !r.intersects(dot)),
            "no place covers its own dot"
        );
        assert!(
            c[0].left() > at.x && c[0].bottom() <= at.y,
            "first: above right"
        );
        // Staggered ones move along the edge, both ways.
        assert!(c[6..].iter().any(|r| r.center().x > at.x + 30.0));
        assert!(c[6..].iter().any(|r| r.center().x < at.x - 30.0));
    }

    #[test]
    fn a_corridor_covers_its_segment() {
        let (a, b) = (Pos2::new(0.0, 0.0), Pos2::new(100.0, 40.0));
        let squares: Vec<Rect> = corridor(a, b, 10.0).collect();
        for i in 0..=50 {
            let p = a.lerp(b, i as f32 / 50.0);
            assert!(squares.iter().any(|r| r.contains(p)), "{p:?} uncovered");
        }
    }

    #[test]
    fn marks_try_their_place_then_step_away() {
        let at = Pos2::new(300.0, 100.0);
        let c = mark_candidates(at, Vec2::splat(26.0), -Vec2::X);
        assert_eq!(c[0].center(), at);
        assert!(
            c.iter().all(|r| r.center().x <= at.x),
            "never into the node"
        );
    }

    #[test]
    fn a_ping_and_a_pong_side_by_side_share_one_label() {
        let packets = [
            packet(100.0, "ping", false, 1),
            packet(104.0, "pong", true, 1),
            packet(400.0, "chat \"hi\"", true, 5),
        ];
        let groups = group(&packets, 20.0);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].text, "chat \"hi\"", "highest rank first");
        assert_eq!(groups[1].text, "ping / pong");
        assert_eq!(groups[1].members.len(), 2);
    }

    #[test]
    fn crowded_groups_count() {
        let same = [packet(0.0, "poll", true, 1), packet(3.0, "poll", true, 1)];
        assert_eq!(group(&same, 20.0)[0].text, "poll ×2");
        let few = [
            packet(0.0, "poll", true, 1),
            packet(1.0, "send", true, 1),
            packet(2.0, "noop", true, 1),
        ];
        assert_eq!(group(&few, 20.0)[0].text, "poll · send · noop");
        let many: Vec<Packet> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|l| packet(0.0, l, true, 1))
            .collect();
        assert_eq!(group(&many, 20.0)[0].text, "5 packets");
    }
}
