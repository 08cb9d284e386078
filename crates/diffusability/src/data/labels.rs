//! Class labels: the raw integer values as given, and a dense class index per sample.

/// Labels of `n` samples. `classes` holds the distinct raw values in ascending order and
/// `class_of[i]` indexes into it, so per-class work can use dense arrays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    pub raw: Vec<i64>,
    pub classes: Vec<i64>,
    pub class_of: Vec<u32>,
}

impl Labels {
    pub fn new(raw: Vec<i64>) -> Labels {
        let mut classes = raw.clone();
        classes.sort_unstable();
        classes.dedup();
        let class_of = raw
            .iter()
            .map(|v| {
                classes
                    .binary_search(v)
                    .expect("value is among the classes") as u32
            })
            .collect();
        Labels {
            raw,
            classes,
            class_of,
        }
    }

    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Sample indices of each class, in ascending sample order, indexed like `classes`.
    pub fn members(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.classes.len()];
        for (i, &k) in self.class_of.iter().enumerate() {
            out[k as usize].push(i);
        }
        out
    }

    /// The labels of samples `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Labels {
        Labels::new(idx.iter().map(|&i| self.raw[i]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_classes_are_sorted() {
        let l = Labels::new(vec![7, -1, 7, 3]);
        assert_eq!(l.classes, vec![-1, 3, 7]);
        assert_eq!(l.class_of, vec![2, 0, 2, 1]);
        assert_eq!(l.members(), vec![vec![1], vec![3], vec![0, 2]]);
    }
}
