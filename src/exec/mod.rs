//! The executor: the only async stage; one owner of run state.
