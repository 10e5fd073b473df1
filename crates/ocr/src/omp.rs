//! Keeping Tesseract's OpenMP from oversubscribing the CPU.
//!
//! Debian builds libtesseract with OpenMP. Its LSTM code opens parallel regions of 4 threads
//! (`num_threads(4)`), each lasting microseconds; on a 2-core machine the team's threads spin-wait for each other
//! and a read gets 3–6× slower. The usual cure, `OMP_THREAD_LIMIT=1` in the environment, works only if it is set
//! before the process starts: libgomp reads its environment once, in a constructor that runs before `main`, so a
//! program cannot set it for itself.
//!
//! What the OpenMP runtime does offer at run time:
//! - `omp_set_max_active_levels(0)`: no parallel region may become active, so every region runs inline on the
//!   thread that reaches it, at no cost (libgomp checks this before anything else; in Debian 12's libgomp the
//!   setting is process-wide);
//! - `omp_set_dynamic(1)` + `omp_set_num_threads(1)`: a per-thread fallback for runtimes where the first is
//!   per-thread and not yet set there; with dynamic adjustment on, a `num_threads(4)` clause is capped to 1.
//!   (Alone it costs two system calls per region — libgomp re-reads the load average — about 10 % here.)
//!
//! The engine applies both in every thread that runs Tesseract, before every recognition (nanoseconds). The
//! functions are looked up with `dlsym` in the process's global scope, where libgomp is because libtesseract links
//! it; a libtesseract built without OpenMP has nothing to limit.
//!
//! Measured (`BENCHMARKS.md`, section OCR): plain Tesseract on the VGA console screenshot takes 680 ms of CPU
//! untouched, 176 ms with `OMP_THREAD_LIMIT=1` in the environment, 176 ms with this module — the same as the
//! environment variable, so the alternative, re-executing the process with the variable set, would buy nothing
//! and cost a second process start (and confuse debuggers and supervisors holding the first PID).
//!
//! A user who sets `OMP_THREAD_LIMIT` themselves is taken at their word: the engine then leaves OpenMP alone.

use std::ffi::c_void;
use std::sync::OnceLock;

type SetInt = unsafe extern "C" fn(libc::c_int);
type GetInt = unsafe extern "C" fn() -> libc::c_int;

/// The OpenMP runtime functions found in the process.
struct Api {
    set_max_active_levels: SetInt,
    set_num_threads: SetInt,
    set_dynamic: SetInt,
    get_max_threads: GetInt,
    get_dynamic: GetInt,
}

/// Looks up `name` in the global symbol scope.
#[allow(unsafe_code)]
fn symbol(name: &std::ffi::CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the loader's tables.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(|| {
        let found = [
            c"omp_set_max_active_levels",
            c"omp_set_num_threads",
            c"omp_set_dynamic",
            c"omp_get_max_threads",
            c"omp_get_dynamic",
        ]
        .map(symbol);
        let [Some(l), Some(a), Some(b), Some(c), Some(d)] = found else { return None };
        Some(to_api(l, a, b, c, d))
    })
    .as_ref()
}

#[allow(unsafe_code)]
fn to_api(
    levels: *mut c_void,
    set_num_threads: *mut c_void,
    set_dynamic: *mut c_void,
    max: *mut c_void,
    dynamic: *mut c_void,
) -> Api {
    // SAFETY: the pointers are the OpenMP API functions of those names, whose C signatures are `void (int)` and
    // `int (void)` in every OpenMP runtime (libgomp, libomp); function and data pointers have one size here.
    unsafe {
        Api {
            set_max_active_levels: std::mem::transmute::<*mut c_void, SetInt>(levels),
            set_num_threads: std::mem::transmute::<*mut c_void, SetInt>(set_num_threads),
            set_dynamic: std::mem::transmute::<*mut c_void, SetInt>(set_dynamic),
            get_max_threads: std::mem::transmute::<*mut c_void, GetInt>(max),
            get_dynamic: std::mem::transmute::<*mut c_void, GetInt>(dynamic),
        }
    }
}

/// The user's own `OMP_THREAD_LIMIT`, if they set one.
pub fn user_thread_limit() -> Option<String> {
    std::env::var("OMP_THREAD_LIMIT").ok().filter(|v| !v.trim().is_empty())
}

/// How the calling thread's OpenMP is set up, as reported by the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadSettings {
    /// `omp_get_max_threads()`: threads a parallel region without a clause would use.
    pub max_threads: i32,
    /// `omp_get_dynamic()`: whether the runtime may give a region fewer threads than it asks for.
    pub dynamic: bool,
}

/// The calling thread's OpenMP settings, or `None` when no OpenMP runtime is loaded.
#[allow(unsafe_code)]
pub fn current_thread_settings() -> Option<ThreadSettings> {
    let api = api()?;
    // SAFETY: plain OpenMP queries without arguments; see `api` for the signatures.
    let (max_threads, dynamic) = unsafe { ((api.get_max_threads)(), (api.get_dynamic)() != 0) };
    Some(ThreadSettings { max_threads, dynamic })
}

/// Makes every OpenMP parallel region started from the calling thread run on that thread alone.
///
/// Returns `false` when there is nothing to do: no OpenMP runtime in the process, or the user set
/// `OMP_THREAD_LIMIT` (their choice is kept). The engine calls this itself in every thread that runs Tesseract;
/// call it yourself only if you drive Tesseract outside [`crate::Engine`].
#[allow(unsafe_code)]
pub fn limit_current_thread() -> bool {
    if user_thread_limit().is_some() {
        return false;
    }
    let Some(api) = api() else { return false };
    // SAFETY: setters of the calling thread's OpenMP ICVs taking one int; see `api` for the signatures.
    unsafe {
        (api.set_max_active_levels)(0);
        (api.set_dynamic)(1);
        (api.set_num_threads)(1);
    }
    true
}
