//! The thread: which sequence a contact is in now and which step is due.

use kairos_rules::RuleSet;

use crate::{rfc3339, History, Request, Sent};

/// The chosen sequence and step.
pub(crate) struct Thread {
    /// The sequence's index in the rules.
    pub sequence: usize,
    /// The due step's index.
    pub step: usize,
    /// When this sequence last sent (the step's wait counts from it).
    pub previous_at: Option<i64>,
    /// How many sends this sequence has made to the contact.
    pub sent_in_sequence: usize,
    /// Why this thread, in words.
    pub why: String,
}

/// Where one sequence stands for a contact.
struct Standing {
    index: usize,
    priority: i32,
    step: usize,
    previous_at: Option<i64>,
    sent: usize,
    started: bool,
}

/// The highest-priority sequence on the request's channel that the contact
/// is in (started and neither exited nor finished, or entering now), with its
/// due step; or, when none, why.
pub(crate) fn choose(rules: &RuleSet, request: &Request, history: &History) -> Result<Thread, String> {
    let (state, now) = (history.state, request.now);
    let mut notes = Vec::new();
    let mut best: Option<Standing> = None;
    for (index, seq) in rules.sequences().iter().enumerate() {
        if seq.channel != request.channel {
            continue;
        }
        let mine: Vec<&Sent> = history.sends.iter().filter(|s| s.sequence == seq.id).collect();
        let first = mine.iter().map(|s| s.at).min();
        let last = mine.iter().max_by_key(|s| s.at);
        if let Some(since) = first {
            if let Some(exit) = seq.exits.iter().find(|e| rules.exited(e, state, since, now)) {
                notes.push(format!("`{}` exited ({})", seq.id, exit.text));
                continue;
            }
        } else if !rules.holds(&seq.entry, state, now) {
            continue;
        }
        // The step after the last one sent (a step id no longer in the rules: from the start).
        let after = last
            .and_then(|l| seq.steps.iter().position(|s| s.id == l.step))
            .map_or(0, |i| i + 1);
        let due = (after..seq.steps.len()).find(|&i| match &seq.steps[i].when {
            Some(cond) => rules.holds(cond, state, now),
            None => true,
        });
        let Some(step) = due else {
            notes.push(format!("`{}` finished", seq.id));
            continue;
        };
        let standing = Standing {
            index,
            priority: seq.priority,
            step,
            previous_at: last.map(|l| l.at),
            sent: mine.len(),
            started: first.is_some(),
        };
        match &best {
            Some(b) if b.priority >= standing.priority => {
                notes.push(format!("`{}` (priority {}) outranked", seq.id, seq.priority))
            }
            Some(b) => {
                let outranked = &rules.sequences()[b.index];
                notes.push(format!(
                    "`{}` (priority {}) outranked",
                    outranked.id, outranked.priority
                ));
                best = Some(standing);
            }
            None => best = Some(standing),
        }
    }
    let Some(best) = best else {
        let mut why = format!("no sequence on `{}` applies", request.channel);
        if !notes.is_empty() {
            why = format!("{why}: {}", notes.join("; "));
        }
        return Err(why);
    };
    let seq = &rules.sequences()[best.index];
    let how = if best.started {
        let since = best.previous_at.map(rfc3339).unwrap_or_default();
        format!("{} sent, last at {since}", best.sent)
    } else {
        format!("entering: {}", seq.entry.text)
    };
    let mut why = format!(
        "thread `{}` (priority {}; {how}), step {} of {} `{}`",
        seq.id,
        seq.priority,
        best.step + 1,
        seq.steps.len(),
        seq.steps[best.step].id
    );
    if !notes.is_empty() {
        why = format!("{why}; {}", notes.join("; "));
    }
    Ok(Thread {
        sequence: best.index,
        step: best.step,
        previous_at: best.previous_at,
        sent_in_sequence: best.sent,
        why,
    })
}
