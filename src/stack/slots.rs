//! The replicas of a stack stickyscope runs, kept as slots: ids handed out in order and never
//! reused (`1`, `2`, …, at most [`MAX_REPLICAS`]), where each replica lives (its place: an
//! address, a port), what runs it now (its handle, while it runs), what happened to it last,
//! and one operation at a time. The embedded stack and the chain keep their replicas here and
//! differ only in how a replica starts, stops and enters rotation. [`ReplicaSettings`] are
//! what their replicas start with.

use std::future::Future;

use stickyscope_contract::heartbeat::Heartbeat;
use stickyscope_vocab::stack::{Adapter, MAX_REPLICAS};
use tokio::sync::{Mutex, MutexGuard};

use super::control::{ControlError, ReplicaState};

/// The heartbeat and adapter replicas start with from now on: changed by a reconfiguration,
/// read by every start.
#[derive(Debug)]
pub struct ReplicaSettings(std::sync::Mutex<(Heartbeat, Adapter)>);

impl ReplicaSettings {
    /// Replicas start with `heartbeat` and `adapter`.
    pub fn new(heartbeat: Heartbeat, adapter: Adapter) -> Self {
        ReplicaSettings(std::sync::Mutex::new((heartbeat, adapter)))
    }

    /// What a replica starts with now.
    pub fn get(&self) -> (Heartbeat, Adapter) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes what is given, keeps the rest.
    pub fn change(&self, heartbeat: Option<Heartbeat>, adapter: Option<Adapter>) {
        let mut settings = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = heartbeat {
            settings.0 = h;
        }
        if let Some(a) = adapter {
            settings.1 = a;
        }
    }
}

/// What runs a replica: an in-process server, a child process.
pub trait Running: Send {
    /// How it ended on its own, if it did (a process that died); `None` while it runs.
    fn exited(&self) -> Option<String> {
        None
    }
}

/// One replica.
pub struct Slot<P, H> {
    /// Its id (`X-Replica`).
    pub id: String,
    /// Where it lives; kept across restarts, so its server URL (and sticky cookie) stays.
    pub place: P,
    handle: Option<H>,
    state: ReplicaState,
}

impl<P, H: Running> Slot<P, H> {
    /// What happened to it last: running turns into exited when its handle ended on its own.
    pub fn state(&self) -> ReplicaState {
        match (&self.handle, &self.state) {
            (Some(handle), ReplicaState::Running) => match handle.exited() {
                Some(how) => ReplicaState::Exited(how),
                None => ReplicaState::Running,
            },
            (_, state) => state.clone(),
        }
    }

    /// What runs it, while it runs.
    pub fn running(&self) -> Option<&H> {
        self.handle.as_ref().filter(|h| h.exited().is_none())
    }
}

/// Every replica of a stack, in the order they were added.
pub struct Slots<P, H> {
    slots: Mutex<Vec<Slot<P, H>>>,
    /// Held for the whole of each operation, so operations run one after another: a kill
    /// that arrives while the replicas restart with new settings waits for them, and no
    /// replica is left on the old settings.
    ops: Mutex<()>,
}

impl<P, H> Default for Slots<P, H> {
    fn default() -> Self {
        Slots {
            slots: Mutex::new(Vec::new()),
            ops: Mutex::new(()),
        }
    }
}

impl<P: Clone + Send, H: Running> Slots<P, H> {
    /// Waits for the operation under way, then holds off the next until the guard drops.
    pub async fn one_at_a_time(&self) -> MutexGuard<'_, ()> {
        self.ops.lock().await
    }

    /// Starts the next replica with `start` (given its id) and keeps it; returns its id and
    /// place.
    pub async fn add<F, Fut>(&self, start: F) -> Result<(String, P), ControlError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<(P, H), ControlError>>,
    {
        let mut slots = self.slots.lock().await;
        if slots.len() >= MAX_REPLICAS {
            return Err(ControlError::Full);
        }
        let id = (slots.len() + 1).to_string();
        let (place, handle) = start(id.clone()).await?;
        slots.push(Slot {
            id: id.clone(),
            place: place.clone(),
            handle: Some(handle),
            state: ReplicaState::Running,
        });
        Ok((id, place))
    }

    /// Takes the handle of running replica `id` to stop or kill it, marking it `next`;
    /// returns its place and handle.
    pub async fn take_running(&self, id: &str, next: ReplicaState) -> Result<(P, H), ControlError> {
        let mut slots = self.slots.lock().await;
        let slot = find(&mut slots, id)?;
        match slot.handle.take() {
            Some(handle) if handle.exited().is_none() => {
                slot.state = next;
                Ok((slot.place.clone(), handle))
            }
            other => {
                slot.handle = other;
                Err(ControlError::NotRunning(id.to_owned()))
            }
        }
    }

    /// Starts replica `id` again at its place with `start`; returns the place.
    pub async fn restart<F, Fut>(&self, id: &str, start: F) -> Result<P, ControlError>
    where
        F: FnOnce(P) -> Fut,
        Fut: Future<Output = Result<H, ControlError>>,
    {
        let mut slots = self.slots.lock().await;
        let slot = find(&mut slots, id)?;
        if slot.running().is_some() {
            return Err(ControlError::AlreadyRunning(id.to_owned()));
        }
        let handle = start(slot.place.clone()).await?;
        slot.handle = Some(handle);
        slot.state = ReplicaState::Running;
        Ok(slot.place.clone())
    }

    /// `f` of running replica `id`'s place and handle.
    pub async fn with_running<T>(
        &self,
        id: &str,
        f: impl FnOnce(&P, &H) -> T,
    ) -> Result<T, ControlError> {
        let mut slots = self.slots.lock().await;
        let slot = find(&mut slots, id)?;
        let handle = slot
            .running()
            .ok_or_else(|| ControlError::NotRunning(id.to_owned()))?;
        Ok(f(&slot.place, handle))
    }

    /// `f` of every slot, in order.
    pub async fn map<T>(&self, f: impl FnMut(&Slot<P, H>) -> T) -> Vec<T> {
        self.slots.lock().await.iter().map(f).collect()
    }

    /// Ids of the replicas running now.
    pub async fn running_ids(&self) -> Vec<String> {
        self.slots
            .lock()
            .await
            .iter()
            .filter(|s| s.running().is_some())
            .map(|s| s.id.clone())
            .collect()
    }

    /// Takes every handle there is, marking each replica `next` (the stack is ending).
    pub async fn take_all(&self, next: ReplicaState) -> Vec<(P, H)> {
        let mut slots = self.slots.lock().await;
        slots
            .iter_mut()
            .filter_map(|slot| {
                let handle = slot.handle.take()?;
                slot.state = next.clone();
                Some((slot.place.clone(), handle))
            })
            .collect()
    }
}

fn find<'a, P, H>(
    slots: &'a mut [Slot<P, H>],
    id: &str,
) -> Result<&'a mut Slot<P, H>, ControlError> {
    slots
        .iter_mut()
        .find(|s| s.id == id)
        .ok_or_else(|| ControlError::UnknownReplica(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handle that may have ended on its own.
    struct Fake(Option<&'static str>);

    impl Running for Fake {
        fn exited(&self) -> Option<String> {
            self.0.map(str::to_owned)
        }
    }

    fn run(f: impl Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f);
    }

    #[test]
    fn ids_count_up_and_each_state_is_kept() {
        run(async {
            let slots: Slots<u16, Fake> = Slots::default();
            for port in [10, 11, 12] {
                let (id, place) = slots
                    .add(|_| async move { Ok((port, Fake(None))) })
                    .await
                    .unwrap();
                assert_eq!(place, port);
                assert_eq!(id, (port - 9).to_string());
            }
            let (place, _) = slots.take_running("2", ReplicaState::Killed).await.unwrap();
            assert_eq!(place, 11);
            assert!(matches!(
                slots.take_running("2", ReplicaState::Stopped).await,
                Err(ControlError::NotRunning(_))
            ));
            assert!(matches!(
                slots.take_running("9", ReplicaState::Stopped).await,
                Err(ControlError::UnknownReplica(_))
            ));
            assert!(matches!(
                slots.restart("1", |_| async { Ok(Fake(None)) }).await,
                Err(ControlError::AlreadyRunning(_))
            ));
            assert_eq!(slots.running_ids().await, ["1", "3"]);
            let states = slots.map(|s| s.state()).await;
            assert_eq!(
                states,
                [
                    ReplicaState::Running,
                    ReplicaState::Killed,
                    ReplicaState::Running
                ]
            );
            assert_eq!(
                slots
                    .restart("2", |p| async move {
                        assert_eq!(p, 11);
                        Ok(Fake(None))
                    })
                    .await
                    .unwrap(),
                11
            );
            assert_eq!(slots.running_ids().await, ["1", "2", "3"]);
        });
    }

    #[test]
    fn a_handle_that_ended_on_its_own_is_exited_and_not_running() {
        run(async {
            let slots: Slots<u16, Fake> = Slots::default();
            slots
                .add(|_| async { Ok((1, Fake(Some("signal 9")))) })
                .await
                .unwrap();
            assert_eq!(
                slots.map(|s| s.state()).await,
                [ReplicaState::Exited("signal 9".into())]
            );
            assert!(matches!(
                slots.take_running("1", ReplicaState::Stopped).await,
                Err(ControlError::NotRunning(_))
            ));
            // It may be started again.
            slots
                .restart("1", |_| async { Ok(Fake(None)) })
                .await
                .unwrap();
            assert_eq!(slots.running_ids().await, ["1"]);
        });
    }

    #[test]
    fn the_stack_is_full_at_the_limit() {
        run(async {
            let slots: Slots<usize, Fake> = Slots::default();
            for n in 0..MAX_REPLICAS {
                slots
                    .add(|_| async move { Ok((n, Fake(None))) })
                    .await
                    .unwrap();
            }
            assert!(matches!(
                slots.add(|_| async { Ok((0, Fake(None))) }).await,
                Err(ControlError::Full)
            ));
        });
    }
}
