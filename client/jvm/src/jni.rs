//! The few raw JNI calls the exports need: reading a Java string and
//! throwing an exception.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};

use jni_sys::{JNIEnv, jstring};

/// `text` as a new Java string (null if it cannot be made).
///
/// # Safety
/// `env` must be the JNI environment of the current thread.
pub(crate) unsafe fn new_string(env: *mut JNIEnv, text: &str) -> jstring {
    if env.is_null() {
        return std::ptr::null_mut();
    }
    let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
    // SAFETY: per this function's contract.
    unsafe { ((**env).v1_1.NewStringUTF)(env, text.as_ptr()) }
}

/// Java exception classes the exports throw.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Throw {
    /// A bad argument (`java.lang.IllegalArgumentException`).
    Argument,
    /// A closed or broken gate (`java.lang.IllegalStateException`).
    State,
}

impl Throw {
    fn class(self) -> &'static CStr {
        match self {
            Throw::Argument => c"java/lang/IllegalArgumentException",
            Throw::State => c"java/lang/IllegalStateException",
        }
    }
}

/// The contents of Java string `s` (`None` for `null`).
///
/// # Safety
/// `env` must be the JNI environment of the current thread and `s` a valid
/// local reference (or null).
pub(crate) unsafe fn string(env: *mut JNIEnv, s: jstring) -> Option<String> {
    if env.is_null() || s.is_null() {
        return None;
    }
    // SAFETY: per this function's contract; the characters are released
    // before returning.
    unsafe {
        let functions = &(**env).v1_1;
        let chars = (functions.GetStringUTFChars)(env, s, std::ptr::null_mut());
        if chars.is_null() {
            return None;
        }
        let text = CStr::from_ptr(chars).to_string_lossy().into_owned();
        (functions.ReleaseStringUTFChars)(env, s, chars);
        Some(text)
    }
}

/// Throws a `kind` exception with `message` in the calling Java thread
/// (raised when the native method returns).
///
/// # Safety
/// `env` must be the JNI environment of the current thread.
pub(crate) unsafe fn throw(env: *mut JNIEnv, kind: Throw, message: &str) {
    if env.is_null() {
        return;
    }
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: per this function's contract.
    unsafe {
        let functions = &(**env).v1_1;
        let class = (functions.FindClass)(env, kind.class().as_ptr());
        if !class.is_null() {
            (functions.ThrowNew)(env, class, message.as_ptr());
        }
    }
}
