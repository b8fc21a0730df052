//! [`SimQueue`]: an SQS standard queue in memory, on a simulated clock, as
//! Lambda's poller sees it: messages received in batches (each receive
//! raising the message's receive count), invisible until the visibility
//! timeout passes unless deleted, moved to the dead-letter side after
//! `maxReceiveCount` receives, and billed as SQS bills (a request per 64 KiB
//! chunk; sends and deletes in batches of ten). The queue-side faults of
//! [`Faults`] are drawn here: reordering on receive, whole batches and
//! single messages delivered again (their deletes lost).

use super::faults::{Faults, Kind};
use super::SQS_FIXTURE;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use kairos_store::{Attribute, DeadLetters, Message, Queue, QueueError, Redelivery};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

/// SQS bills a request per started 64 KiB of payload.
const CHUNK_BYTES: usize = 64 * 1024;
/// Entries per send, receive and delete batch.
const ENTRIES: usize = 10;

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The body.
    pub body: String,
    /// Message attributes (name, string value).
    pub attributes: Vec<Attribute>,
    /// How many times it was received.
    pub receives: u32,
}

/// Billed SQS requests, by API.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bill {
    /// `SendMessageBatch` (and dead-letter sends).
    pub send: u64,
    /// `ReceiveMessage` calls that returned messages.
    pub receive: u64,
    /// `DeleteMessageBatch`.
    pub delete: u64,
    /// `ChangeMessageVisibility`.
    pub change_visibility: u64,
}

impl Bill {
    /// Every billed request.
    pub fn total(&self) -> u64 {
        self.send + self.receive + self.delete + self.change_visibility
    }
}

#[derive(Default)]
struct State {
    next: u64,
    /// (visible at, sequence) of every message not deleted.
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    messages: HashMap<u64, Stored>,
    dead: Vec<Stored>,
    /// Redelivery delays asked for, by receipt handle.
    delays: HashMap<String, u32>,
    bill: Bill,
}

/// A simulated SQS standard queue with its redrive dead-letter queue.
pub struct SimQueue {
    visibility_secs: i64,
    max_receives: u32,
    template: SqsMessage,
    state: Mutex<State>,
}

/// Billed requests for `bytes` of payload.
fn chunks(bytes: usize) -> u64 {
    bytes.div_ceil(CHUNK_BYTES).max(1) as u64
}

impl SimQueue {
    /// A queue with the template's visibility timeout and `maxReceiveCount`.
    pub fn new(visibility_secs: i64, max_receives: u32) -> SimQueue {
        let fixture: SqsEvent = serde_json::from_str(SQS_FIXTURE).expect("the SQS fixture");
        let mut template = fixture.records[0].clone();
        template.message_attributes.clear();
        SimQueue {
            visibility_secs,
            max_receives,
            template,
            state: Mutex::new(State::default()),
        }
    }

    /// Puts a message on the queue, visible at once, unbilled (a test's own send).
    pub fn push(&self, body: String, attributes: Vec<Attribute>) {
        let mut state = self.state.lock().unwrap();
        let seq = state.next;
        state.next += 1;
        state.heap.push(Reverse((i64::MIN, seq)));
        let stored = Stored {
            body,
            attributes,
            receives: 0,
        };
        state.messages.insert(seq, stored);
    }

    /// Receives up to `max` messages visible at `now` (unix seconds), as the
    /// poller does: in calls of ten; a message past `maxReceiveCount` goes to
    /// the dead-letter side instead; a reordered one is left for later.
    pub fn receive(&self, now: i64, max: usize, faults: &Faults) -> Vec<SqsMessage> {
        let mut state = self.state.lock().unwrap();
        let (mut out, mut deferred) = (Vec::new(), Vec::new());
        while out.len() < max {
            let Some(&Reverse((at, seq))) = state.heap.peek() else {
                break;
            };
            if at > now {
                break;
            }
            state.heap.pop();
            if faults.roll(Kind::Reordered, faults.rates().reordered) {
                deferred.push(seq);
                continue;
            }
            let message = state.messages.get_mut(&seq).expect("a queued message");
            message.receives += 1;
            if message.receives > self.max_receives {
                let dead = state.messages.remove(&seq).expect("a queued message");
                state.dead.push(dead);
                continue;
            }
            out.push(self.lambda_message(seq, message));
        }
        for seq in deferred {
            state.heap.push(Reverse((now + 1, seq)));
        }
        for call in out.chunks(ENTRIES) {
            let size: usize = call.iter().map(|m| m.body.as_deref().map_or(0, str::len)).sum();
            state.bill.receive += chunks(size);
        }
        out
    }

    /// The message as Lambda's poller passes it.
    fn lambda_message(&self, seq: u64, stored: &Stored) -> SqsMessage {
        let mut m = self.template.clone();
        m.message_id = Some(seq.to_string());
        m.receipt_handle = Some(format!("{seq}.{}", stored.receives));
        m.body = Some(stored.body.clone());
        for (name, value) in &stored.attributes {
            let mut a = SqsMessageAttribute::default();
            a.string_value = Some(value.clone());
            a.data_type = Some("String".into());
            m.message_attributes.insert(name.clone(), a);
        }
        m
    }

    /// Ends a batch received at `now`: `failed` the ids the handler reported
    /// (`None`: the invocation crashed, so every message comes back). The
    /// others are deleted unless their delete is lost (a redelivery fault).
    pub fn settle(&self, now: i64, batch: &[SqsMessage], failed: Option<&[String]>, faults: &Faults) {
        let whole = failed.is_some() && faults.roll(Kind::BatchRedelivered, faults.rates().batch_redelivered);
        let mut state = self.state.lock().unwrap();
        let mut deleted = 0usize;
        for m in batch {
            let id = m.message_id.as_deref().unwrap_or_default();
            let seq: u64 = id.parse().expect("a simulated message id");
            if !state.messages.contains_key(&seq) {
                continue; // Settled already by a concurrent invocation.
            }
            let failed_here = failed.is_none_or(|f| f.iter().any(|x| x == id));
            let kept =
                failed_here || whole || faults.roll(Kind::MessageRedelivered, faults.rates().message_redelivered);
            if !kept {
                state.messages.remove(&seq);
                deleted += 1;
                continue;
            }
            let receipt = m.receipt_handle.clone().unwrap_or_default();
            let delay = state.delays.remove(&receipt).map(i64::from);
            let at = now + delay.filter(|_| failed_here).unwrap_or(self.visibility_secs);
            state.heap.push(Reverse((at, seq)));
        }
        state.bill.delete += deleted.div_ceil(ENTRIES) as u64;
    }

    /// Messages on the queue (visible or not).
    pub fn len(&self) -> usize {
        self.state.lock().unwrap().messages.len()
    }

    /// When the next message becomes visible, if any is queued.
    pub fn next_visible(&self) -> Option<i64> {
        let state = self.state.lock().unwrap();
        state.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The dead-letter side: messages past `maxReceiveCount`, and those sent
    /// there directly ([`DeadLetters`]).
    pub fn dead(&self) -> Vec<Stored> {
        self.state.lock().unwrap().dead.clone()
    }

    /// Takes the dead letters (an operator's redrive).
    pub fn take_dead(&self) -> Vec<Stored> {
        std::mem::take(&mut self.state.lock().unwrap().dead)
    }

    /// The requests billed so far.
    pub fn bill(&self) -> Bill {
        self.state.lock().unwrap().bill
    }
}

/// Sends as the SQS adapter does: batches of ten, billed per 64 KiB.
impl Queue for SimQueue {
    async fn send(&self, messages: &[Message]) -> Result<(), QueueError> {
        for call in messages.chunks(ENTRIES) {
            let size: usize = call.iter().map(|m| m.body.len()).sum();
            self.state.lock().unwrap().bill.send += chunks(size);
            for m in call {
                self.push(m.body.clone(), Vec::new());
            }
        }
        Ok(())
    }
}

/// The dead-letter side, sent to directly (write-back's permanent failures).
impl DeadLetters for SimQueue {
    async fn dead_letter(&self, body: &str, attributes: &[Attribute]) -> Result<(), QueueError> {
        let mut state = self.state.lock().unwrap();
        state.bill.send += chunks(body.len());
        state.dead.push(Stored {
            body: body.to_string(),
            attributes: attributes.to_vec(),
            receives: 0,
        });
        Ok(())
    }
}

/// A received message's next delivery put off (its visibility changed).
impl Redelivery for SimQueue {
    async fn delay(&self, receipt_handle: &str, secs: u32) -> Result<(), QueueError> {
        let mut state = self.state.lock().unwrap();
        state.bill.change_visibility += 1;
        state.delays.insert(receipt_handle.to_string(), secs);
        Ok(())
    }
}
