//! Child processes with a deadline. No test waits on a child forever: a
//! child that outlives its limit is killed and the test fails, so a hang
//! costs minutes, not the whole CI job. Tests may start with SIGINT and
//! SIGHUP ignored (`nohup`, `cmd &` in a script), and children inherit that;
//! a test that sends one of them resets it in the child first.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest any command of the suite may take on a loaded 2-core machine.
pub const LIMIT: Duration = Duration::from_secs(600);

/// `cmd.output()`, bounded by `LIMIT`; an error only when it cannot start.
pub fn output(cmd: &mut Command) -> std::io::Result<Output> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    // Both pipes drain while it runs, so a chatty child never blocks on a full one.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = wait(&mut child, LIMIT, &format!("{cmd:?}"));
    Ok(Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() })
}

/// Waits for `child` at most `limit`; past it, kills it and fails the test.
pub fn wait(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait(); // SIGKILL cannot be ignored: this returns.
            panic!("{what} did not end within {limit:?}; killed");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Gives the child `signals` with the default action (SIG_DFL) or ignored
/// (SIG_IGN), whatever this process had.
#[cfg(unix)]
pub fn with_signals<'a>(
    cmd: &'a mut Command,
    signals: &'static [libc::c_int],
    action: libc::sighandler_t,
) -> &'a mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls are allowed;
    // signal(2) is one, and nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            for &s in signals {
                if libc::signal(s, action) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    }
}

/// Sends `signal` to `child`.
#[cfg(unix)]
pub fn send(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) with a PID of our own unreaped child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0, "kill {signal}");
}
