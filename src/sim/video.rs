//! The result video every task serves: a real, playable H.264 clip (64x64, 1 s, ~2 KB) made
//! once with ffmpeg and committed, so downloads exercise real bytes and integrity checks.

/// The MP4 served at every result URL.
pub const CLIP: &[u8] = include_bytes!("../../tests/fixtures/sim/clip.mp4");

/// Its media type.
pub const CONTENT_TYPE: &str = "video/mp4";

/// The path a task's result is served at, under the simulator's base URL.
pub fn path(task_id: &str) -> String {
    format!("/files/{task_id}.mp4")
}
