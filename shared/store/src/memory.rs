//! In-memory twins of the adapters, for the embedded demo and unit tests.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::{Claimed, Claims, ContactStore, DeliveryLedger, Message, Queue, QueueError, StoreError, StoredContact};

/// Contact records in a map, with the same conditional-write rules as DynamoDB.
#[derive(Debug, Default)]
pub struct MemoryContacts {
    records: Mutex<HashMap<String, StoredContact>>,
}

impl MemoryContacts {
    /// Every contact key stored, sorted.
    pub fn contacts(&self) -> Vec<String> {
        let mut keys: Vec<String> = lock(&self.records).keys().cloned().collect();
        keys.sort();
        keys
    }
}

impl ContactStore for MemoryContacts {
    async fn load(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        Ok(lock(&self.records).get(contact).cloned())
    }

    async fn save(&self, contact: &str, expected: Option<u64>, record: &StoredContact) -> Result<(), StoreError> {
        let mut records = lock(&self.records);
        if records.get(contact).map(|r| r.version) != expected {
            return Err(StoreError::Conflict);
        }
        records.insert(contact.to_string(), record.clone());
        Ok(())
    }

    async fn clear_outbox(&self, contact: &str, version: u64) -> Result<bool, StoreError> {
        match lock(&self.records).get_mut(contact) {
            Some(r) if r.version == version => {
                r.outbox.clear();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// A FIFO of message bodies; [`MemoryQueue::drain`] takes what was sent.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    messages: Mutex<VecDeque<Message>>,
}

impl MemoryQueue {
    /// Removes and returns every queued message, oldest first.
    pub fn drain(&self) -> Vec<Message> {
        lock(&self.messages).drain(..).collect()
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        lock(&self.messages).len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Queue for MemoryQueue {
    async fn send(&self, messages: &[Message]) -> Result<(), QueueError> {
        lock(&self.messages).extend(messages.iter().cloned());
        Ok(())
    }
}

/// Delivered versions in a map.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    versions: Mutex<HashMap<String, u64>>,
}

impl DeliveryLedger for MemoryLedger {
    async fn delivered(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(lock(&self.versions).get(key).copied())
    }

    async fn record(&self, key: &str, version: u64) -> Result<(), StoreError> {
        let mut versions = lock(&self.versions);
        let entry = versions.entry(key.to_string()).or_insert(version);
        *entry = (*entry).max(version);
        Ok(())
    }
}

/// Claimed keys, their expiry and whether they are confirmed, in a map.
#[derive(Debug, Default)]
pub struct MemoryClaims {
    keys: Mutex<HashMap<String, (i64, bool)>>,
}

impl Claims for MemoryClaims {
    async fn claim(&self, key: &str, pending_until: i64, now: i64) -> Result<Claimed, StoreError> {
        let mut keys = lock(&self.keys);
        keys.retain(|_, (expiry, _)| *expiry >= now);
        match keys.get(key) {
            Some((_, true)) => Ok(Claimed::Done),
            Some((_, false)) => Ok(Claimed::Pending),
            None => {
                keys.insert(key.to_string(), (pending_until, false));
                Ok(Claimed::Fresh)
            }
        }
    }

    async fn confirm(&self, key: &str, expires_at: i64) -> Result<(), StoreError> {
        lock(&self.keys).insert(key.to_string(), (expires_at, true));
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.keys).remove(key);
        Ok(())
    }
}

/// Locks a mutex, recovering the data if a panicking holder poisoned it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
