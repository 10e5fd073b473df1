//! Where the runner's screen comes from: a live VNC server ([`VncSource`]) or a recording of an earlier run
//! ([`crate::replay::ReplaySource`]). One runner drives both through [`Source`]; the source also owns the clock,
//! so a replay runs in its own time (sleeps and timeouts advance it at once) and gives the same result on every
//! machine however fast its OCR is.
//!
//! A live source given a [`FrameRecorder`] records every distinct screen the runner looks at and every input
//! it sends (see [`crate::recording`]): the `frames/` of `--debug`, which `vmkit automate replay` reads.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::recording::{ButtonName, FrameRecorder, Line};
use crate::screen::{ReconnectPolicy, ScreenError};
use crate::script::Secret;

/// A screen the runner reads and sends input to.
pub trait Source: Send {
    /// True for a live screen (a machine behind it: the health check runs), false for a recording.
    const LIVE: bool;
    /// What it is, for the log: the server's name, or the recording.
    fn name(&self) -> String;
    /// The screen size now.
    fn size(&self) -> (u32, u32);
    /// Whether the guest's pointer is absolute or relative.
    fn pointer_mode(&self) -> rfb::PointerMode;
    /// Whether the pointer is kept out of the screen image (see [`rfb::Client::pointer_out_of_framebuffer`]).
    fn pointer_out_of_framebuffer(&self) -> bool;
    /// `Err(Lost)` if the connection has dropped.
    fn status(&self) -> Result<(), ScreenError>;
    /// Connects again after a loss.
    fn reconnect(
        &mut self,
        log: &mut (dyn FnMut(String) + Send),
    ) -> impl Future<Output = Result<(), ScreenError>> + Send;
    /// The screen now.
    fn frame(&mut self) -> rfb::Frame;
    /// What changed since the last call (or the last [`Source::wait_for_damage`]), with the screen now.
    fn take_damage(&mut self) -> (Vec<ocr::Rect>, rfb::Frame);
    /// Waits until the screen changes or `timeout` passes; the changed rectangles, or `None` on timeout.
    fn wait_for_damage(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<Vec<ocr::Rect>>, ScreenError>> + Send;
    /// Moves the pointer.
    fn move_to(&mut self, x: u32, y: u32) -> impl Future<Output = Result<(), ScreenError>> + Send;
    /// Presses or releases a button where the pointer is.
    fn button(&mut self, button: rfb::Button, down: bool) -> impl Future<Output = Result<(), ScreenError>> + Send;
    /// Types text.
    fn type_text(
        &mut self,
        text: &str,
        opts: &rfb::TypeOptions,
    ) -> impl Future<Output = Result<(), ScreenError>> + Send;
    /// Presses a key or chord.
    fn press_chord(&mut self, chord: &rfb::Chord) -> impl Future<Output = Result<(), ScreenError>> + Send;
    /// The source's time.
    fn now(&self) -> Instant;
    /// Waits until `until` in the source's time.
    fn sleep_until(&mut self, until: Instant) -> impl Future<Output = ()> + Send;
}

/// A live VNC server, reconnected when it drops.
pub struct VncSource {
    addr: String,
    options: rfb::ConnectOptions,
    policy: ReconnectPolicy,
    client: rfb::Client,
    recorder: Option<FrameRecorder>,
}

impl std::fmt::Debug for VncSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VncSource").field("addr", &self.addr).finish()
    }
}

impl VncSource {
    /// Connects (retrying within the policy's budget: the VM may still be starting).
    pub async fn connect(
        addr: &str,
        password: Option<&Secret>,
        timeout: Duration,
        policy: ReconnectPolicy,
        log: &mut (dyn FnMut(String) + Send),
    ) -> Result<Self, ScreenError> {
        let options =
            rfb::ConnectOptions { password: password.map(|p| p.expose().to_owned()), timeout, ..Default::default() };
        let client = connect_with_backoff(addr, &options, policy, log).await?;
        Ok(Self { addr: addr.to_owned(), options, policy, client, recorder: None })
    }

    /// The connected client.
    pub fn client(&self) -> &rfb::Client {
        &self.client
    }

    /// Records from now on into `recorder`, starting with the screen as it is.
    pub fn record(&mut self, recorder: FrameRecorder) {
        self.recorder = Some(recorder);
        let frame = self.client.frame();
        self.observe(&frame);
    }

    /// Stops recording and waits until the recording is on disk.
    pub fn finish_recording(&mut self) {
        if let Some(mut rec) = self.recorder.take() {
            rec.finish();
        }
    }

    /// Records `frame` when recording. The recorder keeps the last frame it recorded, so while recording the
    /// client copies the screen on its next update instead of updating it in place (debug runs only).
    fn observe(&mut self, frame: &rfb::Frame) {
        if let Some(rec) = &mut self.recorder {
            rec.frame(frame, (self.client.pointer_mode(), self.client.pointer_out_of_framebuffer()));
        }
    }

    fn sent(&mut self, line: Line) {
        if let Some(rec) = &mut self.recorder {
            rec.input(line);
        }
    }
}

impl Source for VncSource {
    const LIVE: bool = true;

    fn name(&self) -> String {
        self.client.server_name().to_owned()
    }

    fn size(&self) -> (u32, u32) {
        self.client.size()
    }

    fn pointer_mode(&self) -> rfb::PointerMode {
        self.client.pointer_mode()
    }

    fn pointer_out_of_framebuffer(&self) -> bool {
        self.client.pointer_out_of_framebuffer()
    }

    fn status(&self) -> Result<(), ScreenError> {
        self.client.status().map_err(ScreenError::from_rfb)
    }

    async fn reconnect(&mut self, log: &mut (dyn FnMut(String) + Send)) -> Result<(), ScreenError> {
        self.client = connect_with_backoff(&self.addr, &self.options, self.policy, log).await?;
        self.sent(Line::Reconnect { t_ms: 0.0 });
        let frame = self.client.frame();
        self.observe(&frame);
        Ok(())
    }

    fn frame(&mut self) -> rfb::Frame {
        let frame = self.client.frame();
        self.observe(&frame);
        frame
    }

    fn take_damage(&mut self) -> (Vec<ocr::Rect>, rfb::Frame) {
        let damage = self.client.take_damage().iter().map(to_ocr_rect).collect();
        let frame = self.client.frame();
        self.observe(&frame);
        (damage, frame)
    }

    async fn wait_for_damage(&mut self, timeout: Duration) -> Result<Option<Vec<ocr::Rect>>, ScreenError> {
        match self.client.wait_for_damage(timeout).await {
            Ok(Some(rects)) => {
                if self.recorder.is_some() {
                    let frame = self.client.frame();
                    self.observe(&frame);
                }
                Ok(Some(rects.iter().map(to_ocr_rect).collect()))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(ScreenError::from_rfb(e)),
        }
    }

    async fn move_to(&mut self, x: u32, y: u32) -> Result<(), ScreenError> {
        self.client.move_to(x, y).await.map_err(ScreenError::from_rfb)?;
        self.sent(Line::Move { t_ms: 0.0, x, y });
        Ok(())
    }

    async fn button(&mut self, button: rfb::Button, down: bool) -> Result<(), ScreenError> {
        self.client.button(button, down).await.map_err(ScreenError::from_rfb)?;
        let (x, y) = self.client.pointer_position();
        self.sent(Line::Button { t_ms: 0.0, button: ButtonName::of(button), down, x, y });
        Ok(())
    }

    async fn type_text(&mut self, text: &str, opts: &rfb::TypeOptions) -> Result<(), ScreenError> {
        self.client.type_text(text, opts).await.map_err(ScreenError::from_rfb)?;
        self.sent(Line::Type { t_ms: 0.0, text: text.to_owned() });
        Ok(())
    }

    async fn press_chord(&mut self, chord: &rfb::Chord) -> Result<(), ScreenError> {
        self.client.press_chord(chord).await.map_err(ScreenError::from_rfb)?;
        self.sent(Line::Key { t_ms: 0.0, chord: chord.to_string() });
        Ok(())
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep_until(&mut self, until: Instant) {
        tokio::time::sleep_until(until.into()).await;
    }
}

fn to_ocr_rect(r: &rfb::Rect) -> ocr::Rect {
    ocr::Rect::new(r.x, r.y, r.width, r.height)
}

async fn connect_with_backoff(
    addr: &str,
    options: &rfb::ConnectOptions,
    policy: ReconnectPolicy,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<rfb::Client, ScreenError> {
    let start = Instant::now();
    let mut backoff = policy.initial_backoff;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match rfb::Client::connect(addr, options.clone()).await {
            Ok(client) => {
                if attempts > 1 {
                    log(format!(
                        "connected to {addr} after {attempts} attempts ({:.1}s)",
                        start.elapsed().as_secs_f64()
                    ));
                }
                return Ok(client);
            }
            Err(e) if e.is_auth_failure() => return Err(ScreenError::Auth(e)),
            Err(e) => {
                let elapsed = start.elapsed();
                if elapsed + backoff > policy.budget {
                    return Err(ScreenError::Unreachable {
                        addr: addr.to_owned(),
                        budget: policy.budget,
                        attempts,
                        last: e,
                    });
                }
                if attempts == 1 {
                    log(format!("cannot connect to {addr} ({e}); retrying for up to {:?}", policy.budget));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(policy.max_backoff);
            }
        }
    }
}
