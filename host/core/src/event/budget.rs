//! The causal budget (pure): how many runs, timers and routed events one causal chain
//! (everything descended from one outside event, manual run or schedule slot) may
//! produce. The depth limit bounds how long a chain gets; this bounds how wide: a run
//! that emits ten events which each start it again would otherwise make 10^8 runs
//! within the depth limit.

use std::collections::{HashMap, VecDeque};

/// Runs, timers and routed events one chain may produce by default (`max_chain`).
pub const DEFAULT_MAX_CHAIN: u64 = 1000;

/// Chains remembered at most; the oldest is forgotten first (its budget starts over if
/// it ever produces again, which takes longer than any loop the depth limit lets run).
const MAX_CHAINS: usize = 100_000;

/// Spending per chain.
#[derive(Debug)]
pub struct ChainBudget {
    max: u64,
    spent: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl ChainBudget {
    /// A budget of `max` per chain.
    pub fn new(max: u64) -> ChainBudget {
        ChainBudget {
            max: max.max(1),
            spent: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The budget per chain.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Spend `cost` of `chain`'s budget: `Ok(spent so far)`, or `Err(spent)` (and
    /// nothing spent) when it would go over.
    pub fn spend(&mut self, chain: &str, cost: u64) -> Result<u64, u64> {
        let spent = self.spent.get(chain).copied().unwrap_or(0);
        if spent + cost > self.max {
            return Err(spent);
        }
        if !self.spent.contains_key(chain) {
            if self.order.len() >= MAX_CHAINS
                && let Some(oldest) = self.order.pop_front()
            {
                self.spent.remove(&oldest);
            }
            self.order.push_back(chain.to_string());
        }
        self.spent.insert(chain.to_string(), spent + cost);
        Ok(spent + cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_spends_up_to_its_budget_and_no_further() {
        let mut b = ChainBudget::new(10);
        assert_eq!(b.spend("a", 4), Ok(4));
        assert_eq!(b.spend("a", 6), Ok(10));
        assert_eq!(b.spend("a", 1), Err(10), "over: refused, nothing spent");
        assert_eq!(b.spend("b", 10), Ok(10), "chains are apart");
        assert_eq!(b.spend("c", 11), Err(0), "one step larger than the budget");
        assert_eq!(b.spend("c", 0), Ok(0));
    }

    #[test]
    fn the_oldest_chains_are_forgotten_past_the_bound() {
        let mut b = ChainBudget::new(5);
        for i in 0..MAX_CHAINS + 10 {
            assert!(b.spend(&format!("c{i}"), 1).is_ok());
        }
        assert!(b.spent.len() <= MAX_CHAINS);
        assert_eq!(b.spend("c0", 5), Ok(5), "forgotten: starts over");
        assert_eq!(b.spend(&format!("c{}", MAX_CHAINS + 9), 5), Err(1), "remembered");
    }
}
