//! `IdTable`: a map from database ids to small values that is a plain vector
//! indexed by id while the ids are dense (as sequence-assigned ids are), and a
//! hash map once they are not. A vector lookup is one bounds check and one
//! load, with no hashing and no control bytes to read first, and no memory is
//! spent on empty buckets. The policy index keeps users, orgs, teams, apps and
//! algorithms in these tables.

use rustc_hash::FxHashMap;

/// Ids up to `SLACK` past `spread()` times the row count stay dense.
const SLACK: usize = 1 << 16;
/// The bytes of vector a dense table may spend per row it holds (at least
/// four slots a row): small values, such as an org's active flag, stay dense
/// even when their ids are spread thinly over a sequence they share with
/// other rows (users and orgs take ids from one sequence).
const BYTES_PER_ROW: usize = 64;

#[derive(Debug, Clone)]
pub(crate) enum IdTable<V> {
    Dense { rows: Vec<Option<V>>, len: usize },
    Sparse(FxHashMap<i64, V>),
}

impl<V> Default for IdTable<V> {
    fn default() -> Self {
        IdTable::Dense {
            rows: Vec::new(),
            len: 0,
        }
    }
}

impl<V> IdTable<V> {
    /// A table for `rows`, dense when their ids allow it.
    pub fn build(rows: impl IntoIterator<Item = (i64, V)>) -> Self {
        let rows: Vec<(i64, V)> = rows.into_iter().collect();
        let dense = rows.iter().all(|(id, _)| *id >= 0)
            && rows.iter().map(|(id, _)| *id as usize).max().unwrap_or(0)
                <= Self::dense_limit(rows.len());
        let mut t = if dense {
            let max = rows.iter().map(|(id, _)| *id as usize).max();
            let mut v = Vec::new();
            v.resize_with(max.map_or(0, |m| m + 1), || None);
            IdTable::Dense { rows: v, len: 0 }
        } else {
            IdTable::Sparse(FxHashMap::default())
        };
        for (id, v) in rows {
            t.insert(id, v);
        }
        t
    }

    /// The highest id a dense table of `len` rows takes.
    fn dense_limit(len: usize) -> usize {
        let spread = (BYTES_PER_ROW / std::mem::size_of::<Option<V>>().max(1)).max(4);
        len.saturating_mul(spread).saturating_add(SLACK)
    }

    #[inline(always)]
    pub fn get(&self, id: &i64) -> Option<&V> {
        match self {
            IdTable::Dense { rows, .. } => usize::try_from(*id)
                .ok()
                .and_then(|i| rows.get(i))
                .and_then(Option::as_ref),
            IdTable::Sparse(map) => map.get(id),
        }
    }

    pub fn get_mut(&mut self, id: &i64) -> Option<&mut V> {
        match self {
            IdTable::Dense { rows, .. } => usize::try_from(*id)
                .ok()
                .and_then(|i| rows.get_mut(i))
                .and_then(Option::as_mut),
            IdTable::Sparse(map) => map.get_mut(id),
        }
    }

    pub fn contains_key(&self, id: &i64) -> bool {
        self.get(id).is_some()
    }

    pub fn insert(&mut self, id: i64, v: V) -> Option<V> {
        if let IdTable::Dense { rows, len } = self {
            match usize::try_from(id) {
                Ok(i) if i < rows.len() => {
                    let old = rows[i].replace(v);
                    if old.is_none() {
                        *len += 1;
                    }
                    return old;
                }
                Ok(i) if i <= Self::dense_limit(*len) => {
                    rows.resize_with(i + 1, || None);
                    rows[i] = Some(v);
                    *len += 1;
                    return None;
                }
                _ => self.make_sparse(),
            }
        }
        match self {
            IdTable::Sparse(map) => map.insert(id, v),
            IdTable::Dense { .. } => unreachable!("made sparse above"),
        }
    }

    pub fn remove(&mut self, id: &i64) -> Option<V> {
        match self {
            IdTable::Dense { rows, len } => {
                let old = usize::try_from(*id)
                    .ok()
                    .and_then(|i| rows.get_mut(i))
                    .and_then(Option::take);
                if old.is_some() {
                    *len -= 1;
                }
                old
            }
            IdTable::Sparse(map) => map.remove(id),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            IdTable::Dense { len, .. } => *len,
            IdTable::Sparse(map) => map.len(),
        }
    }

    /// Every (id, value), in no promised order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (i64, &V)> + '_> {
        match self {
            IdTable::Dense { rows, .. } => Box::new(
                rows.iter()
                    .enumerate()
                    .filter_map(|(i, v)| Some((i as i64, v.as_ref()?))),
            ),
            IdTable::Sparse(map) => Box::new(map.iter().map(|(k, v)| (*k, v))),
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = i64> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    fn make_sparse(&mut self) {
        if let IdTable::Dense { rows, .. } = self {
            let map: FxHashMap<i64, V> = std::mem::take(rows)
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| Some((i as i64, v?)))
                .collect();
            *self = IdTable::Sparse(map);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IdTable;

    #[test]
    fn dense_ids_stay_in_a_vector_and_behave_like_a_map() {
        let mut t = IdTable::build((1..=1000).map(|i| (i, i * 10)));
        assert!(matches!(t, IdTable::Dense { .. }));
        assert_eq!(t.len(), 1000);
        assert_eq!(t.get(&7), Some(&70));
        assert_eq!(t.get(&0), None);
        assert_eq!(t.get(&1001), None);
        assert_eq!(t.get(&-3), None);
        assert_eq!(t.insert(7, 71), Some(70));
        assert_eq!(t.len(), 1000);
        assert_eq!(t.remove(&7), Some(71));
        assert_eq!(t.remove(&7), None);
        assert_eq!(t.len(), 999);
        assert!(!t.contains_key(&7));
        assert_eq!(t.keys().count(), 999);
    }

    #[test]
    fn sparse_or_negative_ids_turn_it_into_a_hash_map_without_losing_rows() {
        let mut t = IdTable::build((1..=10).rev().map(|i| (i, i)));
        assert!(matches!(t, IdTable::Dense { .. }));
        assert_eq!(IdTable::build([(1 << 40, 1)]).len(), 1);
        assert!(matches!(IdTable::build([(1 << 40, 1)]), IdTable::Sparse(_)));
        t.insert(1 << 40, 5);
        assert!(matches!(t, IdTable::Sparse(_)));
        assert_eq!(t.len(), 11);
        assert_eq!(t.get(&3), Some(&3));
        assert_eq!(t.get(&(1 << 40)), Some(&5));
        let mut n = IdTable::default();
        n.insert(-1, 1);
        assert!(matches!(n, IdTable::Sparse(_)));
        assert_eq!(n.get(&-1), Some(&1));
        let mut ids: Vec<i64> = t.keys().collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1 << 40]);
    }

    #[test]
    fn small_values_stay_dense_over_thinly_spread_ids() {
        // One org in fifty accounts: flags stay in a vector, wide rows do not.
        let orgs = (1..=2_000).map(|i| (i * 50, true));
        assert!(matches!(IdTable::build(orgs), IdTable::Dense { .. }));
        let wide = (1..=2_000).map(|i| (i * 50, [0u64; 2]));
        assert!(matches!(IdTable::build(wide), IdTable::Sparse(_)));
    }
}
