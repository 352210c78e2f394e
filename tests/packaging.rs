//! The packaging files checked against the real binary, on a machine without a
//! Docker engine or a Kubernetes cluster: `Dockerfile`, `.dockerignore`,
//! `deploy/kubernetes/portshare-sidecar.yaml` and `deploy/systemd/portshare.service`.
//!
//! What can be proved here is proved: the config each file ships parses, the
//! command line each file runs is accepted by `portshare` and serves, stops on
//! SIGTERM with exit code 0, and does so as the non-root user the file names
//! (through `setpriv` when the tests run as root, as they do in CI). The image
//! build itself, the pod's admission and the unit's sandbox are not exercised.
//!
//! YAML is read with a small, strict line parser (no YAML crate is a dependency):
//! it understands exactly the block mappings, block lists, flow lists and the one
//! literal block scalar the manifest uses, and fails on anything else it is asked
//! about.
//!
//! Linux only: the user switch reads /proc and uses setpriv.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portshare::config::Config;

/// Every wait in this file is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

const DOCKERFILE: &str = "Dockerfile";
const DOCKERIGNORE: &str = ".dockerignore";
const MANIFEST: &str = "deploy/kubernetes/portshare-sidecar.yaml";
const UNIT: &str = "deploy/systemd/portshare.service";
const EXAMPLE_CONFIG: &str = "config/portshare.toml";

// ---------------------------------------------------------------------------------
// Small helpers: files, the binary, temp dirs readable by every user.
// ---------------------------------------------------------------------------------

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo(relative)).unwrap_or_else(|err| panic!("{relative}: {err}"))
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_portshare")
}

/// `portshare <subcommand> --help`.
fn help(subcommand: &str) -> String {
    let out = Command::new(bin())
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{subcommand} --help");
    String::from_utf8(out.stdout).unwrap()
}

/// The default of `serve --drain-seconds`, as the binary itself states it.
fn default_drain_seconds() -> u64 {
    let help = help("serve");
    let line = help
        .lines()
        .find(|line| line.trim_start().starts_with("--drain-seconds "))
        .expect("serve --help lists --drain-seconds");
    let (_, rest) = line.split_once("[default: ").expect("a default");
    let (value, _) = rest.split_once(']').unwrap();
    value.parse().unwrap()
}

/// Every `--flag` of `args` (after the subcommand) is one `portshare <sub>` knows.
fn assert_flags_exist(args: &[String]) {
    let help = help(&args[0]);
    for flag in args.iter().filter(|arg| arg.starts_with("--")) {
        assert!(
            help.contains(&format!("{flag} <")),
            "`portshare {} --help` has no {flag}:\n{help}",
            args[0]
        );
    }
}

/// The value following `flag` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|arg| arg == flag)?;
    Some(args.get(at + 1).expect("a flag's value").as_str())
}

/// `args` with the value of `--config` replaced by `path`.
fn with_config(args: &[String], path: &Path) -> Vec<String> {
    let at = args
        .iter()
        .position(|arg| arg == "--config")
        .expect("--config");
    let mut args = args.to_vec();
    args[at + 1] = path.display().to_string();
    args
}

/// A temp dir that every user may read and traverse, holding `portshare.toml`,
/// with a `data/` folder every user may write, as the image's
/// `/etc/portshare/data` is writable by its user.
fn world_readable_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("portshare.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    (dir, path)
}

/// `text` with `from` replaced by `to`, which must occur exactly once.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in the config");
    text.replace(from, to)
}

// ---------------------------------------------------------------------------------
// Running the binary as another user.
// ---------------------------------------------------------------------------------

/// The effective uid of this test process (from /proc: no libc dependency).
fn effective_uid() -> u32 {
    proc_ids(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        "Uid:",
    )[1]
}

/// The four ids (real, effective, saved, fs) of a `/proc/<pid>/status` line.
fn proc_ids(status: &str, field: &str) -> Vec<u32> {
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc status"));
    line[field.len()..]
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect()
}

/// Whether every user may execute `path` (its mode and every folder above it).
fn world_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors()
        .all(|at| std::fs::metadata(at).is_ok_and(|meta| meta.permissions().mode() & 0o001 != 0))
}

/// A command running the portshare binary as `uid:gid`, without supplementary
/// groups. As root that is `setpriv`; a non-root test process is already an
/// unprivileged user, so the binary runs directly as that user (and `uid` is
/// ignored: `expected_uid` says who it will be).
struct AsUser {
    command: Command,
    expected_uid: u32,
    /// Holds a world-executable copy of the binary when the build's own is not.
    _binary_dir: Option<tempfile::TempDir>,
}

fn as_user(uid: u32, gid: u32) -> AsUser {
    let me = effective_uid();
    if me != 0 {
        // Not root: cannot switch users, and need not: this user is not root.
        return AsUser {
            command: Command::new(bin()),
            expected_uid: me,
            _binary_dir: None,
        };
    }
    let setpriv = Command::new("which").arg("setpriv").output().unwrap();
    assert!(
        setpriv.status.success(),
        "the tests run as root and need setpriv (util-linux) to run portshare as \
         uid {uid}; install util-linux"
    );
    let setpriv = String::from_utf8(setpriv.stdout)
        .unwrap()
        .trim()
        .to_string();
    let (binary, binary_dir) = if world_executable(Path::new(bin())) {
        (PathBuf::from(bin()), None)
    } else {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.path().join("portshare");
        std::fs::copy(bin(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        (copy, Some(dir))
    };
    let mut command = Command::new(setpriv);
    command
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(binary);
    AsUser {
        command,
        expected_uid: uid,
        _binary_dir: binary_dir,
    }
}

/// `portshare serve …` running as a child, its stderr read line by line.
struct Serving {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    address: SocketAddr,
}

impl Serving {
    /// Starts `args` (`serve --config …`) as `user`; returns once portshare logs
    /// its listening address (text `address=IP:PORT`, or JSON `"address"`).
    fn start(mut user: AsUser, args: &[String]) -> (Serving, AsUser) {
        let mut child = user
            .command
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut serving = Serving {
            child,
            lines,
            seen: Vec::new(),
            address: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let line = serving.wait_for("portshare listening");
        let address = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|event| event["address"].as_str().map(str::to_string))
            .or_else(|| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix("address="))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        serving.address = address.parse().unwrap();
        (serving, user)
    }

    /// The next stderr line containing `needle`, within `WAIT`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no log line containing {needle:?} within {WAIT:?}; seen:\n{}",
            self.seen.join("\n")
        );
    }

    /// The process's real, effective, saved and fs uids, from /proc.
    fn uids(&self) -> Vec<u32> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        proc_ids(&status, "Uid:")
    }

    /// The executable the process runs (the pid is portshare's own, not a wrapper's).
    fn executable_name(&self) -> String {
        let exe = std::fs::read_link(format!("/proc/{}/exe", self.child.id())).unwrap();
        exe.file_name().unwrap().to_string_lossy().into_owned()
    }

    /// One `GET path` over a raw TCP socket, as a kubelet probe sends it.
    fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect_timeout(&self.address, WAIT).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kube-probe/1.30\r\nConnection: close\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// Sends SIGTERM with `kill -TERM <pid>` and returns the exit code (within `WAIT`).
    fn terminate(mut self) -> Option<i32> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                panic!("portshare did not exit within {WAIT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Serves `args` as `uid:gid`, proves the process runs as that user, answers
/// each of `probes` with 200, and exits 0 on SIGTERM.
fn serve_probe_and_stop(uid: u32, gid: u32, args: &[String], probes: &[&str]) {
    let (serving, user) = Serving::start(as_user(uid, gid), args);
    assert_eq!(serving.executable_name(), "portshare");
    let uids = serving.uids();
    assert_eq!(
        uids,
        vec![user.expected_uid; 4],
        "real, effective, saved and fs uid of portshare"
    );
    assert_ne!(uids[1], 0, "portshare runs as root");
    for probe in probes {
        let response = serving.get(probe);
        assert!(
            response.starts_with("HTTP/1.1 200 OK\r\n"),
            "GET {probe}: {response}"
        );
    }
    assert_eq!(serving.terminate(), Some(0), "exit code after SIGTERM");
}

// ---------------------------------------------------------------------------------
// Dockerfile.
// ---------------------------------------------------------------------------------

/// One instruction: its keyword (upper case) and its arguments.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> Vec<&Instruction> {
        self.instructions
            .iter()
            .filter(|instruction| instruction.keyword == keyword)
            .collect()
    }

    /// The one instruction with this keyword (panics on none or several).
    fn one(&self, keyword: &str) -> &Instruction {
        let all = self.all(keyword);
        assert_eq!(all.len(), 1, "one {keyword} in stage {:?}", self.name);
        all[0]
    }
}

/// The Dockerfile's stages: comment lines dropped, `\` continuations joined.
fn dockerfile_stages() -> Vec<Stage> {
    let text = read(DOCKERFILE);
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let (keyword, args) = pending.split_once(' ').expect("an instruction");
                instructions.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.split_whitespace().collect::<Vec<_>>().join(" "),
                });
                pending.clear();
            }
        }
    }
    assert!(pending.is_empty(), "a continuation at the end of the file");
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction.args.split(' ').collect();
            let name = match words.as_slice() {
                [_] => None,
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => panic!("FROM {}", instruction.args),
            };
            stages.push(Stage {
                image: words[0].to_string(),
                name,
                instructions: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .expect("an instruction before the first FROM")
                .instructions
                .push(instruction);
        }
    }
    stages
}

/// An exec-form (JSON array) instruction's arguments.
fn exec_form(instruction: &Instruction) -> Vec<String> {
    serde_json::from_str(&instruction.args).unwrap_or_else(|err| {
        panic!(
            "{} {} is not exec form: {err}",
            instruction.keyword, instruction.args
        )
    })
}

/// The runtime stage's COPY instructions as (source, destination, --from stage).
fn runtime_copies(runtime: &Stage) -> Vec<(String, String, Option<String>)> {
    runtime
        .all("COPY")
        .into_iter()
        .map(|copy| {
            let mut words: Vec<&str> = copy.args.split(' ').collect();
            let from = words
                .first()
                .and_then(|word| word.strip_prefix("--from="))
                .map(str::to_string);
            if from.is_some() {
                words.remove(0);
            }
            assert_eq!(words.len(), 2, "COPY of one file: {}", copy.args);
            (words[0].to_string(), words[1].to_string(), from)
        })
        .collect()
}

/// Where the runtime image holds the binary and the config: (binary, config).
fn image_paths() -> (String, String) {
    let stages = dockerfile_stages();
    let copies = runtime_copies(stages.last().unwrap());
    let binary = copies
        .iter()
        .find(|(_, _, from)| from.is_some())
        .map(|(_, destination, _)| destination.clone())
        .expect("the binary copied from the build stage");
    let config = copies
        .iter()
        .find(|(source, _, from)| from.is_none() && source == EXAMPLE_CONFIG)
        .map(|(_, destination, _)| destination.clone())
        .expect("the example config copied into the image");
    (binary, config)
}

/// The runtime stage's `USER uid:gid`, both numeric.
fn image_user() -> (u32, u32) {
    let stages = dockerfile_stages();
    let runtime = stages.last().unwrap();
    let user = &runtime.all("USER").last().expect("a USER").args;
    let (uid, gid) = user.split_once(':').expect("USER uid:gid");
    (
        uid.parse()
            .unwrap_or_else(|_| panic!("numeric uid: {user}")),
        gid.parse()
            .unwrap_or_else(|_| panic!("numeric gid: {user}")),
    )
}

fn cargo_manifest() -> toml::Value {
    cargo_manifest_at(&repo("Cargo.toml"))
}

/// `1.95` from `rust:1.95-bookworm`, and the Debian release of an image tag.
fn tag_parts(image: &str) -> (String, String) {
    let (_, tag) = image.split_once(':').expect("an image with a tag");
    let (version, release) = tag.split_once('-').expect("a tag naming its release");
    (version.to_string(), release.to_string())
}

fn version_at_least(version: &str, minimum: &str) -> bool {
    let parse = |text: &str| -> Vec<u64> { text.split('.').map(|n| n.parse().unwrap()).collect() };
    let (version, minimum) = (parse(version), parse(minimum));
    // `rust:1-…` is the newest 1.x: at least any 1.y.
    (version.len() == 1 && version[0] == minimum[0]) || version >= minimum
}

#[test]
fn dockerfile_builds_with_rust_and_runs_on_the_same_debian_release() {
    let stages = dockerfile_stages();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let (build, runtime) = (&stages[0], &stages[1]);

    assert!(build.image.starts_with("rust:"), "build on {}", build.image);
    assert_eq!(build.name.as_deref(), Some("build"));
    let (rust, build_release) = tag_parts(&build.image);
    let minimum = cargo_manifest()["package"]["rust-version"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        version_at_least(&rust, &minimum),
        "Rust {rust} is older than rust-version {minimum}"
    );
    let runs: Vec<&str> = build
        .all("RUN")
        .iter()
        .map(|run| run.args.as_str())
        .collect();
    assert_eq!(runs, ["cargo build --release --locked"]);

    // The binary links glibc dynamically: it must run on the release it was built on.
    assert_eq!(runtime.image, format!("debian:{build_release}-slim"));
    assert_eq!(build_release, "bookworm");
    assert_eq!(runtime.one("EXPOSE").args, "8080");
    assert_eq!(runtime.one("STOPSIGNAL").args, "SIGTERM");
}

#[test]
fn dockerfile_runtime_holds_only_the_binary_and_the_config() {
    let stages = dockerfile_stages();
    let build = &stages[0];
    let copies = runtime_copies(stages.last().unwrap());
    let manifest = cargo_manifest();
    let bins = manifest["bin"].as_array().unwrap();
    assert_eq!(bins.len(), 1);
    let name = bins[0]["name"].as_str().unwrap();
    assert_eq!(name, "portshare");
    let workdir = build.one("WORKDIR").args.clone();
    assert_eq!(
        copies,
        vec![
            (
                format!("{workdir}/target/release/{name}"),
                format!("/usr/local/bin/{name}"),
                Some("build".to_string()),
            ),
            (
                EXAMPLE_CONFIG.to_string(),
                "/etc/portshare/portshare.toml".to_string(),
                None,
            ),
        ]
    );
}

#[test]
fn dockerfile_runs_as_a_fixed_non_root_user_without_shell_or_home() {
    let stages = dockerfile_stages();
    let runtime = stages.last().unwrap();
    let (uid, gid) = image_user();
    assert_ne!(uid, 0, "USER is root");
    assert_ne!(gid, 0, "USER's group is root");
    // USER comes after every RUN, so nothing runs as root after it is set; and it
    // is the runtime stage's last say on the user.
    let position = |keyword: &str| {
        runtime
            .instructions
            .iter()
            .rposition(|instruction| instruction.keyword == keyword)
    };
    assert!(position("USER") > position("RUN"));
    let run = runtime.one("RUN");
    for expected in [
        format!("useradd --system --uid {uid} --gid {gid} --no-create-home"),
        "--home-dir /nonexistent --shell /usr/sbin/nologin".to_string(),
        format!("groupadd --system --gid {gid}"),
    ] {
        assert!(
            run.args.contains(&expected),
            "{expected:?} in RUN {}",
            run.args
        );
    }
}

#[test]
fn dockerfile_entrypoint_and_cmd_are_the_binarys_own_command_line() {
    let stages = dockerfile_stages();
    let runtime = stages.last().unwrap();
    let entrypoint = exec_form(runtime.one("ENTRYPOINT"));
    let cmd = exec_form(runtime.one("CMD"));
    let (binary, config) = image_paths();

    // `portshare` resolves through PATH, which in debian images has /usr/local/bin.
    assert_eq!(entrypoint, ["portshare"]);
    assert_eq!(binary, format!("/usr/local/bin/{}", entrypoint[0]));

    assert_eq!(cmd, ["serve", "--config", "/etc/portshare/portshare.toml"]);
    assert_flags_exist(&cmd);
    assert!(help("serve").contains("--config <PATH>"));
    assert_eq!(flag_value(&cmd, "--config"), Some(config.as_str()));

    // The config the image ships is valid for the binary it ships.
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(repo(EXAMPLE_CONFIG))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .ends_with("portshare.toml: valid\n")
    );
}

/// The image's command line (CMD after ENTRYPOINT) on its own config, as its USER:
/// only `listen` is moved to a free port of 127.0.0.1.
#[test]
fn dockerfile_command_serves_and_drains_as_the_image_user() {
    let stages = dockerfile_stages();
    let cmd = exec_form(stages.last().unwrap().one("CMD"));
    let (uid, gid) = image_user();
    let text = replace_once(
        &read(EXAMPLE_CONFIG),
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:0\"",
    );
    let (_dir, path) = world_readable_config(&text);
    serve_probe_and_stop(
        uid,
        gid,
        &with_config(&cmd, &path),
        &["/healthz", "/readyz"],
    );
}

/// The build stage's COPY set is a complete package: cargo resolves it with the
/// lock file as it is (`--locked`), and every target it would build is there.
/// (`cargo build` refuses a manifest whose declared targets are missing.)
#[test]
fn dockerfile_build_context_is_a_complete_locked_package() {
    let stages = dockerfile_stages();
    let build = &stages[0];
    let ignored: Vec<String> = read(DOCKERIGNORE)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_end_matches('/').to_string())
        .collect();
    for needed in ["target", ".git", "fuzz/target"] {
        assert!(
            ignored.iter().any(|line| line == needed),
            "{needed} ignored"
        );
    }

    let context = tempfile::tempdir().unwrap();
    let mut copied = Vec::new();
    for copy in build.all("COPY") {
        let words: Vec<&str> = copy.args.split(' ').collect();
        let (destination, sources) = words.split_last().unwrap();
        assert!(!copy.args.starts_with("--"), "COPY {}", copy.args);
        for source in sources {
            assert!(
                !ignored
                    .iter()
                    .any(|line| *source == line || source.starts_with(&format!("{line}/"))),
                "{source} is copied but .dockerignore leaves it out"
            );
            let from = repo(source);
            let to = if destination.ends_with('/') {
                context.path().join(destination).join(source)
            } else {
                assert_eq!(sources.len(), 1);
                context.path().join(destination)
            };
            copy_tree(&from, &to);
            copied.push(source.to_string());
        }
    }
    for needed in ["Cargo.toml", "Cargo.lock", "src"] {
        assert!(
            copied.iter().any(|source| source == needed),
            "{needed} copied"
        );
    }

    // Every target the repository's manifest declares for a build (lib, bin,
    // bench, build script; `[[test]]`/`[[example]]` sections too) is in the context,
    // at the same place. `cargo metadata` silently drops a declared target whose file
    // is missing, where `cargo build` fails: hence the comparison.
    let declared = build_targets(&repo("Cargo.toml"), &repo(""), &["--no-deps"]);
    // `--no-deps`: resolving every dependency offline would need the crates
    // of every platform in the local cache, which a fresh machine that only
    // built for its own does not have. The image build itself runs --locked.
    let in_context = build_targets(
        &context.path().join("Cargo.toml"),
        context.path(),
        &["--no-deps"],
    );
    assert!(
        declared.contains(&(
            "bin".to_string(),
            "portshare".to_string(),
            "src/main.rs".into()
        )),
        "{declared:?}"
    );
    for target in &declared {
        assert!(
            in_context.contains(target),
            "the build needs {target:?}, which the Dockerfile does not copy"
        );
    }
}

/// The package's targets that `cargo build --release` reads, as (kind, name,
/// source relative to `root`), from `cargo metadata --offline` (plus `extra`:
/// `--no-deps` on the repository, so that its lock file is never rewritten;
/// `--locked` on the build context, as the image build runs).
fn build_targets(
    manifest: &Path,
    root: &Path,
    extra: &[&str],
) -> BTreeSet<(String, String, String)> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--offline", "--format-version", "1"])
        .args(extra)
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata {}: {}",
        manifest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "portshare")
        .expect("the portshare package");
    let cargo_toml = cargo_manifest_at(manifest);
    let declared = |section: &str, name: &str| {
        cargo_toml
            .get(section)
            .and_then(toml::Value::as_array)
            .is_some_and(|targets| {
                targets
                    .iter()
                    .any(|target| target["name"].as_str() == Some(name))
            })
    };
    package["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|target| {
            let kind = target["kind"][0].as_str().unwrap().to_string();
            let name = target["name"].as_str().unwrap().to_string();
            // Auto-discovered tests and examples are not part of `cargo build`.
            let needed = match kind.as_str() {
                "test" => declared("test", &name),
                "example" => declared("example", &name),
                _ => true,
            };
            let source = Path::new(target["src_path"].as_str().unwrap())
                .strip_prefix(root)
                .unwrap_or_else(|_| panic!("{target} outside {}", root.display()))
                .display()
                .to_string();
            needed.then_some((kind, name, source))
        })
        .collect()
}

fn cargo_manifest_at(path: &Path) -> toml::Value {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap_or_else(|err| panic!("{}: {err}", from.display()));
    }
}

// ---------------------------------------------------------------------------------
// Kubernetes manifest: a strict reader for the YAML subset it uses.
// ---------------------------------------------------------------------------------

/// A YAML block: its lines, each with its indentation.
#[derive(Debug, Clone)]
struct Block<'a> {
    lines: Vec<&'a str>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Blank and comment-only lines carry no structure.
fn is_structural(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

impl<'a> Block<'a> {
    /// The indentation of this block's own keys (or list items).
    fn child_indent(&self) -> usize {
        self.lines
            .iter()
            .filter(|line| is_structural(line))
            .map(|line| indent(line))
            .min()
            .expect("a non-empty block")
    }

    /// The lines under line `at`: every following line indented deeper than it
    /// (blank and comment lines included), up to the first structural line that is not.
    fn under(&self, at: usize) -> Block<'a> {
        let own = indent(self.lines[at]);
        let lines = self.lines[at + 1..]
            .iter()
            .take_while(|line| !is_structural(line) || indent(line) > own)
            .copied()
            .collect();
        Block { lines }
    }

    /// The index of this block's own line that is exactly `text` (after indentation).
    fn own_line(&self, text: &str) -> usize {
        let child = self.child_indent();
        let found: Vec<usize> = (0..self.lines.len())
            .filter(|&at| indent(self.lines[at]) == child && self.lines[at].trim() == text)
            .collect();
        assert_eq!(found.len(), 1, "one line {text:?} at indent {child}");
        found[0]
    }

    /// The block mapping under key `key:` of this block.
    fn map(&self, key: &str) -> Block<'a> {
        let block = self.under(self.own_line(&format!("{key}:")));
        assert!(
            block.lines.iter().any(|line| is_structural(line)),
            "{key}: is empty"
        );
        block
    }

    /// The list item of this block (a list) that starts with `- key: value`: the
    /// item's other keys.
    fn item(&self, key: &str, value: &str) -> Block<'a> {
        self.under(self.own_line(&format!("- {key}: {value}")))
    }

    /// The scalar of `key: value`, a direct key of this block (quotes removed).
    fn scalar(&self, key: &str) -> Option<String> {
        let child = self.child_indent();
        let prefix = format!("{key}: ");
        let found: Vec<&str> = self
            .lines
            .iter()
            .filter(|line| indent(line) == child)
            .filter_map(|line| line.trim().strip_prefix(prefix.as_str()))
            .collect();
        assert!(found.len() <= 1, "{key} twice");
        found.first().map(|value| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|value| value.strip_suffix('"'))
                .unwrap_or(value)
                .to_string()
        })
    }

    fn expect_scalar(&self, key: &str) -> String {
        self.scalar(key)
            .unwrap_or_else(|| panic!("no `{key}:` in\n{}", self.lines.join("\n")))
    }

    /// A flow list of strings (`["a", "b"]`), which is JSON.
    fn flow_list(&self, key: &str) -> Vec<String> {
        serde_json::from_str(&self.expect_scalar(key)).unwrap()
    }

    /// A block list of scalars (`- a` lines) under `key:`.
    fn list(&self, key: &str) -> Vec<String> {
        let block = self.map(key);
        let child = block.child_indent();
        block
            .lines
            .iter()
            .filter(|line| is_structural(line))
            .map(|line| {
                assert_eq!(indent(line), child, "a list of scalars: {line:?}");
                let value = line.trim().strip_prefix("- ").expect("a list item");
                value
                    .strip_prefix('"')
                    .and_then(|value| value.strip_suffix('"'))
                    .unwrap_or(value)
                    .to_string()
            })
            .collect()
    }

    /// The literal block scalar `key: |` (clip chomping): its text, indentation removed.
    fn literal(&self, key: &str) -> String {
        let at = self.own_line(&format!("{key}: |"));
        let own = indent(self.lines[at]);
        let rest = &self.lines[at + 1..];
        let content = rest
            .iter()
            .find(|line| !line.trim().is_empty())
            .map(|line| indent(line))
            .expect("a literal block with content");
        assert!(content > own);
        let mut text = String::new();
        let mut taken = 0;
        for line in rest {
            if line.trim().is_empty() {
                text.push('\n');
            } else if indent(line) >= content {
                text.push_str(&line[content..]);
                text.push('\n');
            } else {
                assert!(
                    indent(line) <= own,
                    "a line inside the literal block is under-indented: {line:?}"
                );
                break;
            }
            taken += 1;
        }
        assert!(taken > 0);
        format!("{}\n", text.trim_end_matches('\n'))
    }
}

/// The manifest's documents (split at `---` lines), without comment-only ones.
fn manifest_documents(text: &str) -> Vec<Block<'_>> {
    assert!(!text.contains('\t'), "YAML indentation cannot be a tab");
    let mut documents = vec![Block { lines: Vec::new() }];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(Block { lines: Vec::new() });
        } else {
            documents.last_mut().unwrap().lines.push(line);
        }
    }
    documents.retain(|document| document.lines.iter().any(|line| is_structural(line)));
    documents
}

/// The manifest's documents by kind; each has apiVersion, kind and metadata.name.
fn manifest_by_kind(text: &str) -> Vec<(String, Block<'_>)> {
    manifest_documents(text)
        .into_iter()
        .map(|document| {
            assert_eq!(
                document.child_indent(),
                0,
                "a document is a top-level mapping"
            );
            // Every top-level line is `key:` or `key: value`, each key once.
            let mut keys = BTreeSet::new();
            for line in document.lines.iter().filter(|line| is_structural(line)) {
                if indent(line) == 0 {
                    let (key, _) = line.split_once(':').expect("`key:` at the top level");
                    assert!(keys.insert(key.to_string()), "{key} twice");
                }
            }
            for key in ["apiVersion", "kind", "metadata"] {
                assert!(keys.contains(key), "a document without {key}");
            }
            assert!(!document.map("metadata").expect_scalar("name").is_empty());
            (document.expect_scalar("kind"), document)
        })
        .collect()
}

fn document<'a>(documents: &'a [(String, Block<'a>)], kind: &str) -> &'a Block<'a> {
    let found: Vec<&Block<'_>> = documents
        .iter()
        .filter(|(found, _)| found == kind)
        .map(|(_, document)| document)
        .collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

/// The config the ConfigMap ships, as portshare would read it from its mount.
fn configmap_config(documents: &[(String, Block<'_>)]) -> (String, String) {
    let configmap = document(documents, "ConfigMap");
    let key = "portshare.toml";
    (key.to_string(), configmap.map("data").literal(key))
}

fn portshare_container<'a>(documents: &'a [(String, Block<'a>)]) -> (Block<'a>, Block<'a>) {
    let pod = document(documents, "Deployment")
        .map("spec")
        .map("template")
        .map("spec");
    let container = pod.map("containers").item("name", "portshare");
    (pod, container)
}

#[test]
fn kubernetes_manifest_has_a_configmap_a_deployment_and_a_service() {
    let text = read(MANIFEST);
    let documents = manifest_by_kind(&text);
    let kinds: Vec<(&str, String)> = documents
        .iter()
        .map(|(kind, document)| (kind.as_str(), document.expect_scalar("apiVersion")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("ConfigMap", "v1".to_string()),
            ("Deployment", "apps/v1".to_string()),
            ("Service", "v1".to_string()),
        ]
    );
    // Two containers: the workspace agent and portshare.
    let (pod, _) = portshare_container(&documents);
    let containers = pod.map("containers");
    let names: Vec<String> = containers
        .lines
        .iter()
        .filter(|line| indent(line) == containers.child_indent())
        .filter_map(|line| line.trim().strip_prefix("- name: ").map(str::to_string))
        .collect();
    assert_eq!(names, ["agent", "portshare"]);
}

#[test]
fn kubernetes_configmap_config_parses_and_listens_on_all_addresses() {
    let text = read(MANIFEST);
    let documents = manifest_by_kind(&text);
    let (_, config_text) = configmap_config(&documents);
    let config = Config::parse(&config_text).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.users().count(), 1);
    assert_eq!(config.workspaces().count(), 1);
    let workspace = config.workspaces().next().unwrap();
    assert_eq!(workspace.agents.len(), 1);
    assert_eq!(workspace.agents[0].upstream_host, "127.0.0.1");
    assert_eq!(workspace.owner_id, config.users().next().unwrap().id);
    // The token hash is not one of the demo config's public tokens.
    for demo in [
        "alice-demo-token",
        "bob-demo-token",
        "carol-demo-token",
        "admin-demo-token",
    ] {
        assert!(
            config.tokens.user(demo).is_none(),
            "{demo} works on the pod"
        );
    }
}

#[test]
fn kubernetes_portshare_container_probes_and_mounts_match_the_binary() {
    let text = read(MANIFEST);
    let documents = manifest_by_kind(&text);
    let (pod, container) = portshare_container(&documents);

    let port = container.map("ports").item("name", "http");
    assert_eq!(port.expect_scalar("containerPort"), "8080");
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = container.map(probe).map("httpGet");
        assert_eq!(get.expect_scalar("path"), path, "{probe}");
        assert_eq!(get.expect_scalar("port"), "8080", "{probe}");
    }

    // The config file: the ConfigMap's key, mounted where --config points.
    let args = container.list("args");
    assert_eq!(args[0], "serve");
    assert_flags_exist(&args);
    let (key, _) = configmap_config(&documents);
    let volume = pod.map("volumes").item("name", "portshare-config");
    assert_eq!(
        volume.map("configMap").expect_scalar("name"),
        document(&documents, "ConfigMap")
            .map("metadata")
            .expect_scalar("name")
    );
    let mount = container
        .map("volumeMounts")
        .item("name", "portshare-config");
    assert_eq!(mount.expect_scalar("readOnly"), "true");
    assert_eq!(
        flag_value(&args, "--config"),
        Some(format!("{}/{key}", mount.expect_scalar("mountPath")).as_str())
    );

    // Kubernetes waits this long after the preStop hook starts before SIGKILL: it
    // must cover the hook's pause and the whole drain.
    let drain: u64 = flag_value(&args, "--drain-seconds")
        .map_or_else(default_drain_seconds, |value| value.parse().unwrap());
    let pause = container
        .map("lifecycle")
        .map("preStop")
        .map("exec")
        .flow_list("command");
    assert_eq!(pause[0], "sleep");
    let pause: u64 = pause[1].parse().unwrap();
    let grace: u64 = pod
        .expect_scalar("terminationGracePeriodSeconds")
        .parse()
        .unwrap();
    assert!(
        grace > pause + drain,
        "grace {grace} s <= {pause} s + drain {drain} s"
    );
}

#[test]
fn kubernetes_portshare_container_is_locked_down_as_the_image_user() {
    let text = read(MANIFEST);
    let documents = manifest_by_kind(&text);
    let (pod, container) = portshare_container(&documents);
    let security = container.map("securityContext");
    let (uid, gid) = image_user();
    assert_eq!(security.expect_scalar("runAsNonRoot"), "true");
    assert_eq!(security.expect_scalar("runAsUser"), uid.to_string());
    assert_eq!(security.expect_scalar("runAsGroup"), gid.to_string());
    assert_eq!(security.expect_scalar("readOnlyRootFilesystem"), "true");
    assert_eq!(security.expect_scalar("allowPrivilegeEscalation"), "false");
    assert_eq!(security.map("capabilities").flow_list("drop"), ["ALL"]);
    assert_eq!(pod.expect_scalar("automountServiceAccountToken"), "false");
    assert_eq!(
        pod.map("securityContext")
            .map("seccompProfile")
            .expect_scalar("type"),
        "RuntimeDefault"
    );
}

#[test]
fn kubernetes_service_exposes_portshare_and_only_it() {
    let text = read(MANIFEST);
    let documents = manifest_by_kind(&text);
    let deployment = document(&documents, "Deployment");
    let service = document(&documents, "Service").map("spec");
    let label = "app.kubernetes.io/name";
    let pod_label = deployment
        .map("spec")
        .map("template")
        .map("metadata")
        .map("labels")
        .expect_scalar(label);
    assert_eq!(service.map("selector").expect_scalar(label), pod_label);
    let port = service.map("ports").item("name", "http");
    assert_eq!(port.expect_scalar("port"), "8080");
    assert_eq!(port.expect_scalar("targetPort"), "8080");
    let ports = service.map("ports");
    let items = ports
        .lines
        .iter()
        .filter(|line| indent(line) == ports.child_indent())
        .count();
    assert_eq!(items, 1, "one port");
    // The agent's dev server listens on loopback only: reachable through portshare.
    let (pod, _) = portshare_container(&documents);
    let agent = pod.map("containers").item("name", "agent");
    let command = agent.flow_list("command");
    assert_eq!(command[command.len() - 2..], ["--bind", "127.0.0.1"]);
    let child = agent.child_indent();
    assert!(
        !agent
            .lines
            .iter()
            .any(|line| indent(line) == child && line.trim() == "ports:"),
        "the agent container declares no ports"
    );
}

/// The container's arguments, on the ConfigMap's config, as the container's uid:
/// the JSON log names the address, both probes answer 200, SIGTERM exits 0.
/// Only `listen` is moved to a free port of 127.0.0.1.
#[test]
fn kubernetes_container_args_serve_the_probes_as_uid_10001() {
    let text = read(MANIFEST);
    let documents = manifest_by_kind(&text);
    let (_, config_text) = configmap_config(&documents);
    let (_, container) = portshare_container(&documents);
    let security = container.map("securityContext");
    let uid: u32 = security.expect_scalar("runAsUser").parse().unwrap();
    let gid: u32 = security.expect_scalar("runAsGroup").parse().unwrap();
    assert_eq!(uid, 10001);
    let config = replace_once(
        &config_text,
        "listen = \"0.0.0.0:8080\"",
        "listen = \"127.0.0.1:0\"",
    );
    // The pod's data volume stands as the temp dir's writable data/.
    let config = replace_once(
        &config,
        "url = \"sqlite:/var/lib/portshare/portshare.db\"",
        "url = \"sqlite:data/portshare.db\"",
    );
    let (_dir, path) = world_readable_config(&config);
    let args = with_config(&container.list("args"), &path);
    assert_eq!(flag_value(&args, "--log-format"), Some("json"));
    serve_probe_and_stop(uid, gid, &args, &["/readyz", "/healthz"]);
}

// ---------------------------------------------------------------------------------
// systemd unit.
// ---------------------------------------------------------------------------------

/// The unit's `Key=value` lines by section, in order (repeated keys kept).
fn unit_entries() -> Vec<(String, String, String)> {
    let text = read(UNIT);
    let mut section = String::new();
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(!line.ends_with('\\'), "no continuation lines: {line}");
        if let Some(name) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').expect("Key=value");
        assert!(!section.is_empty(), "{key} before any section");
        entries.push((
            section.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    entries
}

/// The one value of `key` in `section` (panics on none or several).
fn unit_value(entries: &[(String, String, String)], section: &str, key: &str) -> String {
    let values: Vec<&String> = entries
        .iter()
        .filter(|(at, name, _)| at == section && name == key)
        .map(|(_, _, value)| value)
        .collect();
    assert_eq!(values.len(), 1, "one [{section}] {key}=");
    values[0].clone()
}

/// ExecStart's arguments after the binary.
fn unit_args() -> Vec<String> {
    let exec_start = unit_value(&unit_entries(), "Service", "ExecStart");
    assert!(
        !exec_start.contains(['"', '\'', '$', '%']),
        "no quoting or expansion"
    );
    exec_start.split(' ').skip(1).map(str::to_string).collect()
}

#[test]
fn systemd_unit_runs_the_installed_binary_and_stops_it_with_its_drain() {
    let entries = unit_entries();
    let get = |key: &str| unit_value(&entries, "Service", key);
    let (binary, config) = image_paths();
    // The same layout as the image.
    assert_eq!(
        get("ExecStart"),
        format!("{binary} serve --config {config}")
    );
    assert_eq!(
        get("ExecStart"),
        "/usr/local/bin/portshare serve --config /etc/portshare/portshare.toml"
    );
    let args = unit_args();
    assert_flags_exist(&args);
    assert_eq!(get("Type"), "exec");
    assert_eq!(get("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(get("KillSignal"), "SIGTERM");
    assert_eq!(get("Restart"), "on-failure");
    let drain = flag_value(&args, "--drain-seconds")
        .map_or_else(default_drain_seconds, |value| value.parse().unwrap());
    let stop: u64 = get("TimeoutStopSec")
        .parse()
        .expect("TimeoutStopSec in seconds");
    assert!(stop > drain, "TimeoutStopSec {stop} <= drain {drain}");
    assert_eq!(
        unit_value(&entries, "Install", "WantedBy"),
        "multi-user.target"
    );

    // RestartPreventExitStatus is the exit code of a config error: the unit's own
    // command line on a missing config.
    let prevent = get("RestartPreventExitStatus");
    let missing = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(with_config(&args, &missing.path().join("portshare.toml")))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code().map(|code| code.to_string()),
        Some(prevent)
    );
}

#[test]
fn systemd_unit_is_hardened() {
    let entries = unit_entries();
    let get = |key: &str| unit_value(&entries, "Service", key);
    for (key, value) in [
        ("User", "portshare"),
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(get(key), value, "{key}");
    }
}

/// `check-config` with the unit's `--config` flag on the example config, run as
/// `nobody` (65534): exit 0 and `…: valid`.
#[test]
fn check_config_as_nobody_accepts_the_example_config() {
    let args = unit_args();
    assert_eq!(args[0], "serve");
    let (_dir, path) = world_readable_config(&read(EXAMPLE_CONFIG));
    let mut check = vec!["check-config".to_string()];
    check.extend_from_slice(&with_config(&args, &path)[1..]);
    assert_eq!(
        check,
        [
            "check-config".to_string(),
            "--config".to_string(),
            path.display().to_string()
        ]
    );
    let mut user = as_user(65534, 65534);
    let out = user.command.args(&check).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}: valid\n", path.display())
    );
}

/// The unit's ExecStart as `nobody` (65534), standing in for the unit's dynamic
/// user, on the example config with `listen = "127.0.0.1:0"`: it logs its address,
/// answers /healthz, and exits 0 on SIGTERM (the unit's KillSignal).
#[test]
fn systemd_exec_start_serves_as_nobody_and_exits_0_on_sigterm() {
    let text = replace_once(
        &read(EXAMPLE_CONFIG),
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:0\"",
    );
    let (_dir, path) = world_readable_config(&text);
    let args = with_config(&unit_args(), &path);
    assert_eq!(
        unit_value(&unit_entries(), "Service", "KillSignal"),
        "SIGTERM"
    );
    serve_probe_and_stop(65534, 65534, &args, &["/healthz"]);
}
