//! The dependency graph of the services, built once when the config is loaded.
//!
//! Edges are `needs` (start after, stop before, restart with) and `after` (order only).
//! The topological order over both kinds is stored so the core never searches the graph
//! at run time. Must not be rebuilt at run time and must never recurse on input size.
//!
//! It knows services only as [`Node`]s (a name and the names it needs and is ordered
//! after), so it does not depend on the config model; the config's validation uses it to
//! find cycles, the supervisor core to order starts and stops.

/// The index of a service in the config's `services` list (its order in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SvcId(pub usize);

/// What the graph needs of a service: its name and the names of its edges.
pub trait Node {
    fn name(&self) -> &str;
    /// Start after these are ready, stop before them, restart with them.
    fn needs(&self) -> &[String];
    /// Order only.
    fn after(&self) -> &[String];
}

/// Services and the edges between them, by [`SvcId`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// `needs[s]`: what `s` needs.
    pub needs: Vec<Vec<SvcId>>,
    /// `after[s]`: what `s` is ordered after without needing it.
    pub after: Vec<Vec<SvcId>>,
    /// `needed_by[s]`: who needs `s` directly.
    pub needed_by: Vec<Vec<SvcId>>,
    /// `before[s]`: who is ordered after `s` (by `after`).
    pub before: Vec<Vec<SvcId>>,
    /// Every service, dependencies first (needs and after both count).
    pub order: Vec<SvcId>,
    /// `rank[s]`: the position of `s` in `order`.
    pub rank: Vec<usize>,
}

/// What [`Graph::build`] found wrong. The graph is still usable: bad edges are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// `svc` names `dep`, which is not a service.
    Unknown { svc: SvcId, dep: String },
    /// A cycle, as a path that starts and ends at the same service. The graph drops the
    /// path's last edge (from the next-to-last service to the first), so what is left has
    /// no cycle: the start rule (everything needed is up) and the keep rule (nothing needed
    /// is down) can then never disagree about a member.
    Cycle(Vec<SvcId>),
}

impl Graph {
    /// Builds the graph. It never fails: unknown names are dropped, and so is the edge that
    /// closes each cycle (the config parser refuses both, so this only matters for a
    /// config built in code; the fuzzer found that a cycle left in place made the core
    /// start and kill its members in an endless loop).
    pub fn build<S: Node>(services: &[S]) -> (Graph, Vec<GraphError>) {
        let n = services.len();
        let mut errors = Vec::new();
        // A map, not a scan per name: with a scan, 30,000 chained services took seconds.
        let mut by_name: std::collections::HashMap<&str, SvcId> =
            std::collections::HashMap::with_capacity(n);
        for (i, s) in services.iter().enumerate().rev() {
            // The first service of a name wins, as the scan did.
            by_name.insert(s.name(), SvcId(i));
        }
        let find = |name: &str| by_name.get(name).copied();
        let mut g = Graph {
            needs: vec![Vec::new(); n],
            after: vec![Vec::new(); n],
            needed_by: vec![Vec::new(); n],
            before: vec![Vec::new(); n],
            order: Vec::with_capacity(n),
            rank: vec![0; n],
        };
        for (i, s) in services.iter().enumerate() {
            for (list, names) in [(&mut g.needs[i], s.needs()), (&mut g.after[i], s.after())] {
                for name in names {
                    match find(name) {
                        Some(d) if d.0 != i && !list.contains(&d) => list.push(d),
                        Some(_) => {}
                        None => errors.push(GraphError::Unknown {
                            svc: SvcId(i),
                            dep: name.clone(),
                        }),
                    }
                }
            }
        }
        let (cycles, back_edges) = find_cycles(&g);
        for (from, to) in back_edges {
            g.needs[from.0].retain(|&d| d != to);
            g.after[from.0].retain(|&d| d != to);
        }
        for cycle in cycles {
            errors.push(GraphError::Cycle(cycle));
        }
        for i in 0..n {
            for &d in &g.needs[i] {
                g.needed_by[d.0].push(SvcId(i));
            }
            for &d in &g.after[i] {
                g.before[d.0].push(SvcId(i));
            }
        }
        // Kahn's algorithm in file order: of the services whose dependencies are all
        // placed, the first in the file goes next. The ready ones wait in a min-heap, so
        // this is O((services + edges) log services), not a scan of every service per
        // step. Without back edges there is no cycle, so every service is placed; the
        // fallback after it is only a guard.
        let mut indegree: Vec<usize> = (0..n)
            .map(|i| g.needs[i].len() + g.after[i].len())
            .collect();
        let mut placed = vec![false; n];
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
            .filter(|&i| indegree[i] == 0)
            .map(std::cmp::Reverse)
            .collect();
        while let Some(std::cmp::Reverse(next)) = ready.pop() {
            placed[next] = true;
            g.order.push(SvcId(next));
            for &d in g.needed_by[next].iter().chain(&g.before[next]) {
                if indegree[d.0] > 0 {
                    indegree[d.0] -= 1;
                    if indegree[d.0] == 0 {
                        ready.push(std::cmp::Reverse(d.0));
                    }
                }
            }
        }
        g.order.extend((0..n).filter(|&i| !placed[i]).map(SvcId));
        for (pos, s) in g.order.iter().enumerate() {
            g.rank[s.0] = pos;
        }
        (g, errors)
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when there are no services.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Everything that transitively needs `s`, not including `s`.
    pub fn dependents(&self, s: SvcId) -> Vec<SvcId> {
        self.closure(s, &self.needed_by)
    }

    /// Everything `s` transitively needs, not including `s`.
    pub fn requirements(&self, s: SvcId) -> Vec<SvcId> {
        self.closure(s, &self.needs)
    }

    fn closure(&self, s: SvcId, edges: &[Vec<SvcId>]) -> Vec<SvcId> {
        let mut seen = vec![false; self.len()];
        let mut work = vec![s];
        let mut out = Vec::new();
        while let Some(x) = work.pop() {
            for &d in &edges[x.0] {
                if !seen[d.0] && d != s {
                    seen[d.0] = true;
                    out.push(d);
                    work.push(d);
                }
            }
        }
        out.sort_by_key(|d| self.rank[d.0]);
        out
    }
}

/// Every elementary cycle reached by a depth-first search over needs and after edges, each
/// as a path `a, b, .., a`, and the search's back edges `(from, to)`: without them the
/// graph has no cycle. Iterative, so a long chain cannot overflow the stack.
fn find_cycles(g: &Graph) -> (Vec<Vec<SvcId>>, Vec<(SvcId, SvcId)>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Grey,
        Black,
    }
    let n = g.needs.len();
    let mut color = vec![Color::White; n];
    let mut cycles: Vec<Vec<SvcId>> = Vec::new();
    let mut back_edges = Vec::new();
    // Edge `k` of `i`: its needs, then its after (no list built per step).
    let edges = |i: usize, k: usize| -> Option<SvcId> {
        match g.needs[i].get(k) {
            Some(&d) => Some(d),
            None => g.after[i].get(k - g.needs[i].len()).copied(),
        }
    };
    for root in 0..n {
        if color[root] != Color::White {
            continue;
        }
        // The stack holds (node, index of the next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        color[root] = Color::Grey;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(d) = edges(node, *next) {
                *next += 1;
                match color[d.0] {
                    Color::White => {
                        color[d.0] = Color::Grey;
                        stack.push((d.0, 0));
                    }
                    Color::Grey => {
                        back_edges.push((SvcId(node), d));
                        let start = stack.iter().position(|&(x, _)| x == d.0).unwrap_or(0);
                        let mut path: Vec<SvcId> =
                            stack[start..].iter().map(|&(x, _)| SvcId(x)).collect();
                        path.push(d);
                        let mut key: Vec<SvcId> = path[1..].to_vec();
                        key.sort();
                        let dup = cycles.iter().any(|c| {
                            let mut k = c[1..].to_vec();
                            k.sort();
                            k == key
                        });
                        if !dup {
                            cycles.push(path);
                        }
                    }
                    Color::Black => {}
                }
            } else {
                color[node] = Color::Black;
                stack.pop();
            }
        }
    }
    (cycles, back_edges)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Svc {
        name: String,
        needs: Vec<String>,
        after: Vec<String>,
    }

    impl Node for Svc {
        fn name(&self) -> &str {
            &self.name
        }
        fn needs(&self) -> &[String] {
            &self.needs
        }
        fn after(&self) -> &[String] {
            &self.after
        }
    }

    fn svc(name: &str, needs: &[&str], after: &[&str]) -> Svc {
        Svc {
            name: name.to_string(),
            needs: needs.iter().map(|s| s.to_string()).collect(),
            after: after.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn order_puts_dependencies_first() {
        let svcs = [
            svc("sshd", &["net", "keys"], &[]),
            svc("keys", &[], &[]),
            svc("net", &[], &["keys"]),
        ];
        let (g, errors) = Graph::build(&svcs);
        assert!(errors.is_empty());
        assert_eq!(g.order, vec![SvcId(1), SvcId(2), SvcId(0)]);
        assert_eq!(g.needed_by[2], vec![SvcId(0)]);
        assert_eq!(g.before[1], vec![SvcId(2)]);
        assert_eq!(g.dependents(SvcId(1)), vec![SvcId(0)]);
        assert_eq!(g.requirements(SvcId(0)), vec![SvcId(1), SvcId(2)]);
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let svcs = [
            svc("a", &["b"], &[]),
            svc("b", &[], &["c"]),
            svc("c", &["a"], &[]),
            svc("d", &[], &[]),
        ];
        let (g, errors) = Graph::build(&svcs);
        assert_eq!(
            errors,
            vec![GraphError::Cycle(vec![
                SvcId(0),
                SvcId(1),
                SvcId(2),
                SvcId(0)
            ])]
        );
        // The edge that closed it (c needs a) is gone; the rest keeps its order.
        assert!(g.needs[2].is_empty() && g.needed_by[0].is_empty());
        assert_eq!(g.order, vec![SvcId(2), SvcId(1), SvcId(0), SvcId(3)]);
        assert_eq!(g.dependents(SvcId(0)), vec![]);
    }

    #[test]
    fn what_is_left_of_any_cycles_is_acyclic() {
        // Two cycles sharing a member, one through an `after` edge, plus a self-reference.
        let svcs = [
            svc("a", &["b", "a"], &[]),
            svc("b", &["c"], &[]),
            svc("c", &["a"], &["d"]),
            svc("d", &["b"], &[]),
        ];
        let (g, errors) = Graph::build(&svcs);
        assert!(errors.iter().all(|e| matches!(e, GraphError::Cycle(_))));
        assert!(errors.len() >= 2, "{errors:?}");
        // Every edge now goes from later to earlier in `order`.
        for (i, list) in g.needs.iter().chain(&g.after).enumerate() {
            let i = i % svcs.len();
            for d in list {
                assert!(g.rank[d.0] < g.rank[i], "{i} -> {} survives: {g:?}", d.0);
            }
        }
    }

    #[test]
    fn unknown_names_are_dropped_and_reported() {
        let (g, errors) = Graph::build(&[svc("a", &["nope"], &[])]);
        assert_eq!(
            errors,
            vec![GraphError::Unknown {
                svc: SvcId(0),
                dep: "nope".into()
            }]
        );
        assert!(g.needs[0].is_empty());
    }

    #[test]
    fn a_long_chain_does_not_recurse() {
        let names: Vec<String> = (0..5000).map(|i| format!("s{i}")).collect();
        let svcs: Vec<Svc> = (0..5000)
            .map(|i| {
                if i == 0 {
                    svc(&names[0], &[], &[])
                } else {
                    svc(&names[i], &[&names[i - 1]], &[])
                }
            })
            .collect();
        let (g, errors) = Graph::build(&svcs);
        assert!(errors.is_empty());
        assert_eq!(g.rank[4999], 4999);
    }

    #[test]
    fn thirty_thousand_chained_services_are_ordered_dependencies_first() {
        // Written last to first, so every service waits on one further down the file: the
        // order must be the reverse of the file. (The scan Kahn's loop used was quadratic
        // here: 30,000 services took 10 s to check.)
        const N: usize = 30_000;
        let names: Vec<String> = (0..N).map(|i| format!("s{i}")).collect();
        let svcs: Vec<Svc> = (0..N)
            .map(|i| {
                if i == N - 1 {
                    svc(&names[i], &[], &[])
                } else if i % 2 == 0 {
                    svc(&names[i], &[&names[i + 1]], &[])
                } else {
                    svc(&names[i], &[], &[&names[i + 1]])
                }
            })
            .collect();
        let (g, errors) = Graph::build(&svcs);
        assert!(errors.is_empty(), "{errors:?}");
        let want: Vec<SvcId> = (0..N).rev().map(SvcId).collect();
        assert_eq!(g.order, want);
        assert_eq!(g.rank[0], N - 1);
    }

    #[test]
    fn the_first_ready_service_in_the_file_goes_next() {
        // b is ready at once and frees a; a comes before c because it is first in the file.
        let svcs = [
            svc("a", &["b"], &[]),
            svc("b", &[], &[]),
            svc("c", &[], &[]),
        ];
        let (g, _) = Graph::build(&svcs);
        assert_eq!(g.order, vec![SvcId(1), SvcId(0), SvcId(2)]);
    }
}
