//! What any stack is made of, in the words the window, the scenarios and the stacks share:
//! the adapter between replicas, and how many replicas a stack stickyscope runs may hold.

use serde::{Deserialize, Serialize};

/// Most replicas a stack stickyscope runs holds (started, stopped or killed: ids are not
/// reused), as `--replicas` allows.
pub const MAX_REPLICAS: usize = 64;

/// The adapter between a stack's replicas: what carries a message from the replica that
/// accepted it to users on the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Adapter {
    /// One in-process bus shared by all replicas (the embedded stack; on the chain, whose
    /// replicas are processes, this is Redis).
    #[default]
    Memory,
    /// A Redis server.
    Redis,
    /// None: users on different replicas never see each other's messages (the seed's flaw).
    None,
}

impl Adapter {
    /// Every adapter, in display order.
    pub const ALL: [Adapter; 3] = [Adapter::Memory, Adapter::Redis, Adapter::None];

    /// Its name, as flags and scenario files spell it.
    pub fn label(self) -> &'static str {
        match self {
            Adapter::Memory => "memory",
            Adapter::Redis => "redis",
            Adapter::None => "none",
        }
    }

    /// The adapter named `text` (`memory`, `redis`, `none`).
    pub fn from_label(text: &str) -> Option<Adapter> {
        Adapter::ALL.into_iter().find(|a| a.label() == text)
    }

    /// Whether messages cross between replicas.
    pub fn is_on(self) -> bool {
        self != Adapter::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_each_adapter_once() {
        for adapter in Adapter::ALL {
            assert_eq!(Adapter::from_label(adapter.label()), Some(adapter));
        }
        assert_eq!(Adapter::from_label("Redis"), None);
        assert!(!Adapter::None.is_on() && Adapter::Memory.is_on() && Adapter::Redis.is_on());
    }
}
