//! The network side as one piece: the stack (embedded or external), one chat session per
//! user, the topology poller, and the command loop. It talks to the UI only through the
//! event stream ([`event::Event`] through [`sink::EventSink`]) and the command channel
//! ([`event::Command`]).

pub mod event;
pub mod sink;
