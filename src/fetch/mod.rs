//! Distribution: image references and (later) the registry client. Never
//! starts containers.

pub mod reference;
