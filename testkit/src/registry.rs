//! A real image registry on 127.0.0.1 for pull tests: Debian's
//! `docker-registry` (the CNCF distribution registry) with its storage in a
//! temporary directory, and OCI images built with `umoci` and pushed with
//! `skopeo`, as PEERS.md describes. Nothing here reaches beyond loopback.

pub mod proxy;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tools these fixtures drive, and the Debian packages they come in.
const TOOLS: [(&str, &str); 3] = [
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
];

/// Fail (never skip) when a tool is missing, saying how to get it.
pub fn require_registry_tools() {
    require_tools(&TOOLS);
}

/// Fail (never skip) when one of `tools` (tool, Debian package) is
/// missing, saying how to get it.
pub fn require_tools(tools: &[(&str, &str)]) {
    for &(tool, package) in tools {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "`{tool}` is missing: install it with `apt-get install --no-install-recommends {package}` \
             (scripts/provision.sh does)"
        );
    }
}

/// A directory under the system's temp dir, removed (with its content) on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("pfs-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A TCP port on 127.0.0.1 that nobody listens on (right now).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Run a tool to completion; panic with its stderr if it fails.
pub fn run_tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {} failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `docker-registry serve` on 127.0.0.1:PORT with filesystem storage in a
/// temporary directory; killed and removed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

impl Registry {
    /// Start a registry and wait until it answers `GET /v2/`.
    pub fn start() -> Self {
        require_registry_tools();
        let dir = TempDir::new("registry");
        let port = free_port();
        let config = dir.join("config.yml");
        let storage = dir.join("storage");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .expect("write the registry's config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("create the registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = Registry { child, port, dir };
        registry.wait_until_ready();
        registry
    }

    /// `127.0.0.1:PORT`
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log =
                    std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default();
                panic!("docker-registry exited ({status}): {log}");
            }
            if http_status(self.port, "/v2/") == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer on {} within 20 s",
            self.address()
        );
    }

    /// Where the registry keeps a blob's bytes (`sha256:HEX` digest).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of `GET path` on 127.0.0.1:port, if anything answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// An OCI image layout directory (`umoci init`), in which images are built
/// layer by layer with `umoci insert`.
pub struct OciLayout {
    pub path: PathBuf,
}

impl OciLayout {
    /// A new, empty layout at `path` (which must not exist).
    pub fn init(path: &Path) -> Self {
        require_registry_tools();
        run_tool("umoci", &["init", "--layout", &path.display().to_string()]);
        OciLayout {
            path: path.to_path_buf(),
        }
    }

    /// `DIR:TAG`, as umoci and skopeo's `oci:` transport name an image.
    pub fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.path.display())
    }

    /// A new image without layers (config for this machine's platform).
    pub fn new_image(&self, tag: &str) {
        run_tool("umoci", &["new", "--image", &self.image(tag)]);
    }

    /// Another name for the same image.
    pub fn tag(&self, from: &str, to: &str) {
        run_tool("umoci", &["tag", "--image", &self.image(from), to]);
    }

    /// A layer with the directory `source` placed at `target` in the image.
    pub fn insert_dir(&self, tag: &str, source: &Path, target: &str) {
        let source = source.display().to_string();
        run_tool(
            "umoci",
            &["insert", "--image", &self.image(tag), &source, target],
        );
    }

    /// A layer that deletes `target` (a `.wh.` whiteout file).
    pub fn insert_whiteout(&self, tag: &str, target: &str) {
        run_tool(
            "umoci",
            &["insert", "--image", &self.image(tag), "--whiteout", target],
        );
    }

    /// Push an image to `registry` as `NAME:TAG`; returns `127.0.0.1:PORT/NAME:TAG`.
    /// `--all` keeps an image index whole.
    pub fn push(&self, tag: &str, registry: &Registry, name: &str) -> String {
        let reference = format!("{}/{name}", registry.address());
        run_tool(
            "skopeo",
            &[
                "copy",
                "--quiet",
                "--all",
                "--dest-tls-verify=false",
                &format!("oci:{}", self.image(tag)),
                &format!("docker://{reference}"),
            ],
        );
        reference
    }

    /// The JSON of a blob of the layout (`sha256:HEX`).
    pub fn read_blob(&self, digest: &str) -> String {
        let hex = digest.trim_start_matches("sha256:");
        let path = self.path.join("blobs/sha256").join(hex);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// The layout's `index.json`, which names each tag's manifest.
    pub fn index_json(&self) -> String {
        std::fs::read_to_string(self.path.join("index.json")).expect("read index.json")
    }
}
