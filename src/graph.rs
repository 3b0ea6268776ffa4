//! The stage graph: edges from `needs`, cycles, ancestors, descendants and a stable order.
//!
//! Stages are indices into the pipeline's file order; `edges[i]` lists what stage `i` needs.
//! Cycle search is a depth-first walk with an explicit stack, so the error can name the whole
//! circle rather than one stage of it.

use std::collections::BTreeSet;

use crate::config::pipeline::StageIdx;

/// The first cycle found, as the stages along it (each needs the next, the last needs the first).
pub(crate) fn find_cycle(edges: &[Vec<StageIdx>]) -> Option<Vec<StageIdx>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    for root in 0..edges.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // Each frame is a stage and the position of the next need to visit.
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::OnStack;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&StageIdx(need)) = edges[node].get(*next) {
                *next += 1;
                match mark.get(need) {
                    Some(Mark::New) => {
                        mark[need] = Mark::OnStack;
                        stack.push((need, 0));
                    }
                    Some(Mark::OnStack) => {
                        let start = stack.iter().position(|(n, _)| *n == need).unwrap_or(0);
                        return Some(stack[start..].iter().map(|(n, _)| StageIdx(*n)).collect());
                    }
                    _ => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

/// A set of stages as a bitset: ancestor sets of a wide graph are unions of unions, and
/// bitsets keep validating a 200-stage pipeline to microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StageSet {
    words: Vec<u64>,
}

impl StageSet {
    pub(crate) fn contains(&self, idx: StageIdx) -> bool {
        self.words
            .get(idx.0 / 64)
            .is_some_and(|w| w & (1 << (idx.0 % 64)) != 0)
    }

    fn insert(&mut self, idx: StageIdx) {
        let word = idx.0 / 64;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (idx.0 % 64);
    }

    fn union_with(&mut self, other: &StageSet) {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = StageIdx> + '_ {
        self.words.iter().enumerate().flat_map(|(w, bits)| {
            (0..64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| StageIdx(w * 64 + b))
        })
    }
}

/// For each stage, every stage it needs directly or transitively. Stages on a cycle get only
/// what lies outside it.
pub(crate) fn ancestors(edges: &[Vec<StageIdx>]) -> Vec<StageSet> {
    let order = topological(edges);
    let mut out: Vec<StageSet> = vec![StageSet::default(); edges.len()];
    for idx in order {
        let mut set = StageSet::default();
        for need in &edges[idx.0] {
            set.insert(*need);
            set.union_with(&out[need.0]);
        }
        out[idx.0] = set;
    }
    out
}

/// Every stage that needs `root`, directly or transitively, `root` excluded.
pub(crate) fn descendants(edges: &[Vec<StageIdx>], root: StageIdx) -> BTreeSet<StageIdx> {
    let mut found = BTreeSet::new();
    let mut changed = true;
    while changed {
        changed = false;
        for (i, needs) in edges.iter().enumerate() {
            let idx = StageIdx(i);
            if !found.contains(&idx) && needs.iter().any(|n| *n == root || found.contains(n)) {
                found.insert(idx);
                changed = true;
            }
        }
    }
    found
}

/// A topological order that keeps file order among stages that are ready together
/// (Kahn's algorithm, always taking the lowest ready index). Stages on a cycle are left out.
pub(crate) fn topological(edges: &[Vec<StageIdx>]) -> Vec<StageIdx> {
    let mut remaining: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); edges.len()];
    for (i, needs) in edges.iter().enumerate() {
        for need in needs {
            if let Some(list) = dependents.get_mut(need.0) {
                list.push(i);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..edges.len()).filter(|i| remaining[*i] == 0).collect();
    let mut order = Vec::with_capacity(edges.len());
    while let Some(node) = ready.pop_first() {
        order.push(StageIdx(node));
        for &dependent in &dependents[node] {
            remaining[dependent] -= 1;
            if remaining[dependent] == 0 {
                ready.insert(dependent);
            }
        }
    }
    order
}

/// Each stage's depth: 0 for stages with no needs, else one more than its deepest need.
pub(crate) fn levels(edges: &[Vec<StageIdx>]) -> Vec<usize> {
    let mut level = vec![0; edges.len()];
    for idx in topological(edges) {
        level[idx.0] = edges[idx.0]
            .iter()
            .map(|n| level[n.0] + 1)
            .max()
            .unwrap_or(0);
    }
    level
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn e(list: &[&[usize]]) -> Vec<Vec<StageIdx>> {
        list.iter()
            .map(|n| n.iter().map(|i| StageIdx(*i)).collect())
            .collect()
    }

    #[test]
    fn cycles_are_named_whole() {
        assert_eq!(find_cycle(&e(&[&[], &[0], &[1]])), None);
        let cycle = find_cycle(&e(&[&[], &[3], &[1], &[2]])).expect("cycle");
        assert_eq!(cycle, vec![StageIdx(1), StageIdx(3), StageIdx(2)]);
        assert_eq!(find_cycle(&e(&[&[0]])), Some(vec![StageIdx(0)]));
    }

    #[test]
    fn order_ancestors_descendants_levels() {
        let edges = e(&[&[2], &[], &[1], &[0, 1]]);
        assert_eq!(
            topological(&edges),
            vec![StageIdx(1), StageIdx(2), StageIdx(0), StageIdx(3)]
        );
        let anc = ancestors(&edges);
        assert_eq!(
            anc[3].iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(
            descendants(&edges, StageIdx(2))
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>(),
            vec![0, 3]
        );
        assert_eq!(levels(&edges), vec![2, 0, 1, 3]);
    }

    fn dag() -> impl Strategy<Value = Vec<Vec<StageIdx>>> {
        (1usize..30).prop_flat_map(|n| {
            proptest::collection::vec(
                proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
                n,
            )
            .prop_map(move |raw| {
                raw.into_iter()
                    .enumerate()
                    .map(|(i, needs)| {
                        let mut v: Vec<StageIdx> = if i == 0 {
                            Vec::new()
                        } else {
                            needs.iter().map(|x| StageIdx(x.index(i))).collect()
                        };
                        v.sort();
                        v.dedup();
                        v
                    })
                    .collect()
            })
        })
    }

    proptest! {
        #[test]
        fn topological_order_respects_every_edge(edges in dag()) {
            prop_assert_eq!(find_cycle(&edges), None);
            let order = topological(&edges);
            prop_assert_eq!(order.len(), edges.len());
            let pos: Vec<usize> = (0..edges.len()).map(|i| order.iter().position(|s| s.0 == i).unwrap_or(usize::MAX)).collect();
            for (i, needs) in edges.iter().enumerate() {
                for n in needs {
                    prop_assert!(pos[n.0] < pos[i]);
                }
            }
        }

        #[test]
        fn a_back_edge_makes_a_cycle_that_is_found(mut edges in dag(), a in any::<prop::sample::Index>()) {
            let n = edges.len();
            let last = n - 1;
            let anc = ancestors(&edges);
            let count = anc[last].iter().count();
            let target = anc[last].iter().nth(a.index(count.max(1)));
            if let Some(t) = target {
                edges[t.0].push(StageIdx(last));
                let cycle = find_cycle(&edges).expect("a cycle");
                for (i, s) in cycle.iter().enumerate() {
                    let next = cycle[(i + 1) % cycle.len()];
                    prop_assert!(edges[s.0].contains(&next));
                }
            }
        }
    }
}
