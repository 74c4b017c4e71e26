//! Regenerates the example apps' gRPC code from its `.proto` with pure-Rust tools (protox parses
//! the file, tonic-prost-build writes the messages, client and server), so that no build and no
//! test needs `protoc`. Outside the workspace: only run by hand when the `.proto` changes.
//!
//! Run from the workspace root:
//! `cargo run --manifest-path scripts/grpc-codegen/Cargo.toml -- examples/src/grpc examples/proto/echo.proto`

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, proto] = args.as_slice() else {
        eprintln!("usage: grpc-codegen OUT_DIR FILE.proto");
        return ExitCode::FAILURE;
    };
    let include = Path::new(proto).parent().unwrap_or(Path::new("."));
    let generated = protox::compile([proto], [include]).map_err(|e| e.to_string()).and_then(|fds| {
        tonic_prost_build::configure()
            .build_transport(false)
            .out_dir(out)
            .compile_fds(fds)
            .map_err(|e| e.to_string())
    });
    match generated {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grpc-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
