//! `ocpp-inspect`: checks a log of OCPP-J messages, one per line.
//!
//! ```text
//! ocpp-inspect --version 1.6|2.0.1|2.1 [FILE]
//! ```
//!
//! Reads FILE (stdin without it) and prints exactly one line per input line:
//!
//! - `ok<TAB>Action<TAB>canonical-json`: the message decoded into its typed payload; the JSON is
//!   the library's re-encoding of that payload inside its frame;
//! - `error<TAB>ErrorCode<TAB>description`: the CALLERROR code this library would answer, in
//!   the version's spelling (for messages the specification leaves unanswered, such as a
//!   malformed CALLRESULT on 1.6, the code that names the problem).
//!
//! A CALLRESULT (and a CALLERROR or 2.1 CALLRESULTERROR) is typed by the action of the earlier
//! CALL line with the same message id; an id no earlier CALL line used gives an error line with
//! `GenericError`. Both directions may be mixed in one log, so no direction check is made.
//! Exits 0 once all input is read (error lines included); non-zero only for I/O errors or bad
//! arguments.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ocpp_codec::error::{ErrorCode, FrameError};
use ocpp_codec::frame::{Decoder, Frame};
use ocpp_codec::typed::TypedCodec;
use ocpp_codec::Version;

/// Check OCPP-J messages, one per line, and print one verdict line per input line.
#[derive(Debug, Parser)]
#[command(name = "ocpp-inspect", disable_version_flag = true)]
struct Args {
    /// The OCPP version of the connection: 1.6, 2.0.1 or 2.1.
    #[arg(long, value_parser = parse_version)]
    version: Version,
    /// The log to read (stdin when absent).
    file: Option<PathBuf>,
}

fn parse_version(s: &str) -> Result<Version, String> {
    s.parse::<Version>().map_err(|e| e.to_string())
}

/// Turns every input line into one output line.
struct Inspector {
    version: Version,
    decoder: Decoder,
    codec: TypedCodec,
    /// Message id of each CALL line seen -> its action.
    calls: HashMap<String, String>,
    out: String,
}

impl Inspector {
    fn new(version: Version) -> Inspector {
        Inspector {
            version,
            decoder: Decoder::new(version),
            codec: TypedCodec::new(version).validate_outgoing(false),
            calls: HashMap::new(),
            out: String::new(),
        }
    }

    /// The verdict for one line, in `self.out` (without the newline).
    fn line(&mut self, line: &str) {
        self.out.clear();
        let frame = match self.decoder.decode(line) {
            Ok(frame) => frame,
            Err(e) => {
                let code = frame_error_code(&e, self.version);
                return self.error(&code, &e.to_string());
            }
        };
        match frame {
            Frame::Call {
                id,
                action,
                payload,
            } => match self.codec.decode_call(&id, &action, payload) {
                Ok(d) => {
                    self.calls.insert(id.to_string(), action.to_string());
                    match self.codec.encode_call(&id, &d.value) {
                        Ok(text) => self.ok(&action, &text),
                        Err(e) => self.error(&ErrorCode::InternalError, &e.to_string()),
                    }
                }
                Err(reply) => self.error(&reply.code, &reply.description),
            },
            Frame::CallResult { id, payload } => {
                let Some(action) = self.calls.get(&*id).cloned() else {
                    return self.unknown_id(&id);
                };
                match self.codec.decode_result(&id, &action, payload) {
                    Ok(d) => match self.codec.encode_result(&id, &d.value) {
                        Ok(text) => self.ok(&action, &text),
                        Err(e) => self.error(&ErrorCode::InternalError, &e.to_string()),
                    },
                    Err(reply) => self.error(&reply.code, &reply.description),
                }
            }
            Frame::Send {
                id,
                action,
                payload,
            } => match self.codec.decode_send(&id, &action, payload) {
                Ok(d) => match self.codec.encode_send(&id, &d.value) {
                    Ok(text) => self.ok(&action, &text),
                    Err(e) => self.error(&ErrorCode::InternalError, &e.to_string()),
                },
                Err(reply) => self.error(&reply.code, &reply.description),
            },
            f @ (Frame::CallError { .. } | Frame::CallResultError { .. }) => {
                let Some(action) = self.calls.get(f.id()).cloned() else {
                    return self.unknown_id(f.id());
                };
                let text = f.encode(self.version);
                self.ok(&action, &text)
            }
        }
    }

    fn unknown_id(&mut self, id: &str) {
        let description = format!("no earlier CALL with message id {id:?}");
        self.error(&ErrorCode::GenericError, &description)
    }

    fn ok(&mut self, action: &str, text: &str) {
        self.out.push_str("ok\t");
        push_clean(&mut self.out, action);
        self.out.push('\t');
        self.out.push_str(text);
    }

    fn error(&mut self, code: &ErrorCode, description: &str) {
        self.out.push_str("error\t");
        self.out.push_str(code.as_str(self.version));
        self.out.push('\t');
        push_clean(&mut self.out, description);
    }
}

/// The code a frame error is answered with; for errors the specification leaves unanswered,
/// the code that names the problem.
fn frame_error_code(e: &FrameError, version: Version) -> ErrorCode {
    if let Some(reply) = e.reply(version) {
        return reply.code;
    }
    match e {
        FrameError::UnknownMessageType { .. } => {
            ErrorCode::MessageTypeNotSupported.for_version(version)
        }
        _ => ErrorCode::RpcFrameworkError.for_version(version),
    }
}

/// Appends `s` with tabs and line breaks turned into spaces (one verdict, one line).
fn push_clean(out: &mut String, s: &str) {
    if s.contains(['\t', '\n', '\r']) {
        out.extend(s.chars().map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c => c,
        }));
    } else {
        out.push_str(s);
    }
}

fn run(args: Args) -> io::Result<()> {
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(BufReader::with_capacity(1 << 16, File::open(path)?)),
        None => Box::new(BufReader::with_capacity(1 << 16, io::stdin().lock())),
    };
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let mut inspector = Inspector::new(args.version);
    let mut input = input;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        match std::str::from_utf8(&buf) {
            Ok(line) => inspector.line(line),
            Err(e) => {
                inspector.out.clear();
                let code = ErrorCode::RpcFrameworkError.for_version(args.version);
                inspector.error(&code, &format!("message is not valid UTF-8: {e}"));
            }
        }
        out.write_all(inspector.out.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ocpp-inspect: {e}");
            ExitCode::from(1)
        }
    }
}
