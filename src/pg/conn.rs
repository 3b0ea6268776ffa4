//! One parse of the user's connection string, two consumers: tokio-postgres and the libpq tools.
//!
//! The main type is [`ConnInfo`]. tokio-postgres reads neither the `PG*` environment variables
//! nor `.pgpass`, and rejects libpq keys it does not know (`passfile`, `sslrootcert`) with only
//! "invalid connection string"; `pg_dump` and `pg_restore` read all of them. Giving both the raw
//! string would let them connect to different places. So the URL or `key=value` string is parsed
//! here once, completed from the environment and the password file the way libpq does, and then
//! turned into a `tokio_postgres::Config` and into the environment of each child tool. The
//! password reaches a child only through a mode-0600 temporary `PGPASSFILE` ([`PassFile`]): never
//! its argv (world-readable in `/proc`) and never `PGPASSWORD`.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Keys accepted in a `key=value` string or a URL's query, as libpq names them.
const KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "passfile",
    "options",
    "application_name",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
];

/// Variables holding the keys of offsite copies, which `pg_dump` and `pg_restore` never need
/// (a tool's environment is readable by any process of the same user).
const OTHER_KEYS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "PORTCULLIS_AGE_IDENTITY",
];

/// `PGPASSFILE` when there is no password: a path that can never be a file.
pub(crate) const NO_PASSFILE: &str = "/dev/null/portcullis-no-password-file";

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ConnInfo {
    /// A host name, an IP address, or a Unix socket directory (starts with `/`).
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) dbname: String,
    pub(crate) options: Option<String>,
    pub(crate) application_name: Option<String>,
    pub(crate) sslmode: String,
    pub(crate) sslrootcert: Option<String>,
    pub(crate) connect_timeout: Option<u64>,
}

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnInfo({})", self.display())
    }
}

impl ConnInfo {
    /// Parses `postgres[ql]://…` or `key=value …`, then fills what is missing from `env`
    /// (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE`, `PGSSLMODE`,
    /// `PGOPTIONS`, `PGAPPNAME`, `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`) and libpq's defaults, and
    /// looks the password up in the password file when none was given.
    pub(crate) fn parse(text: &str, env: &HashMap<String, String>) -> Result<ConnInfo, String> {
        let text = text.trim();
        let params = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            parse_url(text)?
        } else {
            parse_keywords(text)?
        };
        for key in params.keys() {
            if !KEYS.contains(&key.as_str()) {
                return Err(format!(
                    "unknown connection parameter `{key}`; known: {}",
                    KEYS.join(", ")
                ));
            }
        }
        let get = |key: &str, var: &str| -> Option<String> {
            params
                .get(key)
                .cloned()
                .filter(|v| !v.is_empty())
                .or_else(|| env.get(var).cloned().filter(|v| !v.is_empty()))
        };
        let host = get("host", "PGHOST")
            .or_else(|| get("hostaddr", "PGHOSTADDR"))
            .unwrap_or_else(|| {
                if Path::new("/var/run/postgresql").is_dir() {
                    "/var/run/postgresql".into()
                } else {
                    "localhost".into()
                }
            });
        if host.contains(',') {
            return Err(format!(
                "several hosts (`{host}`) are not supported; name one server"
            ));
        }
        let port = match get("port", "PGPORT") {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("port `{p}` is not a number from 1 to 65535"))?,
            None => 5432,
        };
        let user = get("user", "PGUSER")
            .or_else(|| env.get("USER").cloned())
            .or_else(|| env.get("LOGNAME").cloned())
            .unwrap_or_else(|| "postgres".into());
        let dbname = get("dbname", "PGDATABASE").unwrap_or_else(|| user.clone());
        let sslmode = get("sslmode", "PGSSLMODE").unwrap_or_else(|| "prefer".into());
        if !matches!(
            sslmode.as_str(),
            "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
        ) {
            return Err(format!(
                "sslmode `{sslmode}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ));
        }
        let connect_timeout = match get("connect_timeout", "PGCONNECT_TIMEOUT") {
            Some(t) => Some(
                t.parse::<u64>()
                    .map_err(|_| format!("connect_timeout `{t}` is not a number of seconds"))?,
            ),
            None => None,
        };
        let mut info = ConnInfo {
            host,
            port,
            user,
            password: get("password", "PGPASSWORD"),
            dbname,
            options: get("options", "PGOPTIONS"),
            application_name: get("application_name", "PGAPPNAME"),
            sslmode,
            sslrootcert: get("sslrootcert", "PGSSLROOTCERT"),
            connect_timeout,
        };
        if info.password.is_none() {
            let file = get("passfile", "PGPASSFILE")
                .map(PathBuf::from)
                .or_else(|| env.get("HOME").map(|home| Path::new(home).join(".pgpass")));
            if let Some(file) = file {
                info.password = lookup_passfile(&file, &info);
            }
        }
        Ok(info)
    }

    /// `user@host:port/dbname`: what reports show; never the password.
    pub(crate) fn display(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }

    /// The same server and credentials, another database.
    pub(crate) fn with_dbname(&self, dbname: &str) -> ConnInfo {
        ConnInfo {
            dbname: dbname.to_owned(),
            ..self.clone()
        }
    }

    /// Replaces the password, wherever it appears in `text` (also percent-encoded, base64 or
    /// JSON-escaped), by `***`, with the rules of [`crate::redact::Redactor`].
    pub(crate) fn mask(&self, text: &str) -> String {
        match &self.password {
            Some(p) => crate::redact::Redactor::new([p.clone()])
                .redact_str(text)
                .into_owned(),
            None => text.to_owned(),
        }
    }

    /// The configuration for tokio-postgres. Encryption is not built in: `require` and the
    /// `verify-*` modes are refused rather than silently connecting in plain text.
    pub(crate) fn tokio_config(&self) -> Result<tokio_postgres::Config, String> {
        let mut config = tokio_postgres::Config::new();
        if self.host.starts_with('/') {
            config.host_path(&self.host);
        } else {
            config.host(&self.host);
        }
        config
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(self.application_name.as_deref().unwrap_or("portcullis"));
        if let Some(p) = &self.password {
            config.password(p);
        }
        if let Some(o) = &self.options {
            config.options(o);
        }
        if let Some(t) = self.connect_timeout {
            config.connect_timeout(Duration::from_secs(t.max(1)));
        } else {
            config.connect_timeout(Duration::from_secs(30));
        }
        match self.sslmode.as_str() {
            "disable" => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            }
            "allow" | "prefer" => {
                config.ssl_mode(tokio_postgres::config::SslMode::Prefer);
            }
            other => {
                return Err(format!(
                    "sslmode `{other}` needs TLS, which this build of portcullis does not have; \
                     use `sslmode=disable` or `prefer` (e.g. through an SSH tunnel or on a private network)"
                ));
            }
        }
        Ok(config)
    }

    /// Connects and drives the connection on the runtime; the task ends with the client.
    pub(crate) async fn connect(&self) -> Result<tokio_postgres::Client, String> {
        let config = self.tokio_config()?;
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
            format!(
                "cannot connect to {}: {}",
                self.display(),
                self.mask(&error_text(&e))
            )
        })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// The environment of `pg_dump` and `pg_restore`: [`ConnInfo::child_env`] without any
    /// variable whose value holds the password (the pipeline's `DATABASE_URL`), so the password
    /// reaches the tool through the password file only, and without the offsite copies' keys. A user's `script:` check gets the
    /// stage's variables whole: it may read `DATABASE_URL` itself.
    pub(crate) fn tool_env(
        &self,
        inherited: &[(String, String)],
        passfile: Option<&PassFile>,
    ) -> Vec<(String, String)> {
        let holds_password = |v: &str| {
            self.password
                .as_deref()
                .is_some_and(|p| !p.is_empty() && v.contains(p))
        };
        let kept: Vec<(String, String)> = inherited
            .iter()
            .filter(|(k, v)| !holds_password(v) && !OTHER_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        self.child_env(&kept, passfile)
    }

    /// The libpq environment of a child: every inherited `PG*` variable removed, then this
    /// connection's, with the password in `passfile`.
    pub(crate) fn child_env(
        &self,
        inherited: &[(String, String)],
        passfile: Option<&PassFile>,
    ) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = inherited
            .iter()
            .filter(|(k, _)| !k.starts_with("PG"))
            .cloned()
            .collect();
        env.push(("PGHOST".into(), self.host.clone()));
        env.push(("PGPORT".into(), self.port.to_string()));
        env.push(("PGUSER".into(), self.user.clone()));
        env.push(("PGDATABASE".into(), self.dbname.clone()));
        env.push(("PGSSLMODE".into(), self.sslmode.clone()));
        env.push((
            "PGAPPNAME".into(),
            self.application_name
                .clone()
                .unwrap_or_else(|| "portcullis".into()),
        ));
        if let Some(o) = &self.options {
            env.push(("PGOPTIONS".into(), o.clone()));
        }
        if let Some(c) = &self.sslrootcert {
            env.push(("PGSSLROOTCERT".into(), c.clone()));
        }
        if let Some(t) = self.connect_timeout {
            env.push(("PGCONNECT_TIMEOUT".into(), t.to_string()));
        }
        match passfile {
            Some(f) => env.push(("PGPASSFILE".into(), f.path.display().to_string())),
            // No password: make sure libpq does not find the user's own file for another server.
            // A path that cannot exist (`/dev/null` is no folder) is skipped silently, where
            // `/dev/null` itself made libpq warn "password file is not a plain file".
            None => env.push(("PGPASSFILE".into(), NO_PASSFILE.into())),
        }
        env
    }

    /// A URL for this connection without its password; `passfile` names where the password is.
    pub(crate) fn url_without_password(&self, passfile: Option<&Path>) -> String {
        let mut url = format!("postgresql://{}@", encode(&self.user));
        let mut query = Vec::new();
        if self.host.starts_with('/') {
            query.push(format!("host={}", encode(&self.host)));
            query.push(format!("port={}", self.port));
        } else if self.host.contains(':') {
            url.push_str(&format!("[{}]:{}", self.host, self.port));
        } else {
            url.push_str(&format!("{}:{}", self.host, self.port));
        }
        url.push('/');
        url.push_str(&encode(&self.dbname));
        if self.sslmode != "prefer" {
            query.push(format!("sslmode={}", self.sslmode));
        }
        if let Some(p) = passfile {
            query.push(format!("passfile={}", encode(&p.display().to_string())));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }
}

/// A connection string as the user wrote it, for `plan` and `--dry-run`, with any password
/// written into it (`user:secret@` or `password=secret`) replaced by `***`.
pub(crate) fn hide_password(text: &str) -> String {
    let mut out = text.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        if let Some(at) = out[rest_start..].find('@').map(|i| i + rest_start)
            && let Some(colon) = out[rest_start..at].find(':').map(|i| i + rest_start)
        {
            out.replace_range(colon + 1..at, crate::redact::MASK);
        }
    }
    let mut result = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let value_start = i + "password=".len();
        result.push_str(&rest[..value_start]);
        result.push_str(crate::redact::MASK);
        let tail = &rest[value_start..];
        let end = if let Some(quoted) = tail.strip_prefix('\'') {
            quoted.find('\'').map_or(tail.len(), |e| e + 2)
        } else {
            tail.find([' ', '&']).unwrap_or(tail.len())
        };
        rest = &tail[end..];
    }
    result.push_str(rest);
    result
}

/// A database error's SQLSTATE, message, detail and hint; other errors as they display.
pub(crate) fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                text.push_str(&format!("; {d}"));
            }
            if let Some(h) = db.hint() {
                text.push_str(&format!("; hint: {h}"));
            }
            text
        }
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

/// A mode-0600 password file for one child, removed when dropped.
pub(crate) struct PassFile {
    pub(crate) path: PathBuf,
}

impl PassFile {
    /// Writes `*:*:*:*:<password>` into a new file in `dir`; `None` when there is no password.
    pub(crate) fn create(info: &ConnInfo, dir: &Path) -> Result<Option<PassFile>, String> {
        let Some(password) = &info.password else {
            return Ok(None);
        };
        sweep_stale_passfiles(dir);
        let salt = jiff::Timestamp::now().subsec_nanosecond().unsigned_abs();
        // The pid in the name lets a later portcullis remove the file if this one is killed
        // before `Drop` runs.
        let path = dir.join(format!(
            "{PASSFILE_PREFIX}{}-{salt:08x}",
            std::process::id()
        ));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot create a password file in `{}`: {e}", dir.display()))?;
        let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
        file.write_all(format!("*:*:*:*:{escaped}\n").as_bytes())
            .map_err(|e| format!("cannot write the password file: {e}"))?;
        Ok(Some(PassFile { path }))
    }

    /// A password file that stays (for a URL published to later stages).
    pub(crate) fn persist(info: &ConnInfo, path: &Path) -> Result<(), String> {
        let password = info.password.as_deref().unwrap_or_default();
        let _ = std::fs::remove_file(path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
        let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
        file.write_all(format!("*:*:*:*:{escaped}\n").as_bytes())
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
    }
}

const PASSFILE_PREFIX: &str = ".portcullis-pgpass-";

/// Removes password files that a killed portcullis left in `dir`: files of this user named
/// after a process that no longer runs. A file whose process still runs is left alone, even if
/// that pid was reused: keeping a file a little longer is safe, removing a live one is not.
pub(crate) fn sweep_stale_passfiles(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let uid = nix::unistd::getuid().as_raw();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PASSFILE_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = entry
            .metadata()
            .is_ok_and(|m| m.is_file() && m.uid() == uid);
        if ours && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Drop for PassFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn parse_url(text: &str) -> Result<HashMap<String, String>, String> {
    let rest = text.split_once("://").map(|(_, r)| r).ok_or("not a URL")?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let mut params = HashMap::new();
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            match userinfo.split_once(':') {
                Some((u, p)) => {
                    params.insert("user".into(), decode(u)?);
                    params.insert("password".into(), decode(p)?);
                }
                None => {
                    params.insert("user".into(), decode(userinfo)?);
                }
            }
            hostport
        }
        None => authority,
    };
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("an IPv6 host in brackets has no closing `]`")?;
        params.insert("host".into(), host.to_owned());
        if let Some(port) = after.strip_prefix(':') {
            params.insert("port".into(), port.to_owned());
        }
    } else if !hostport.is_empty() {
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => {
                params.insert("host".into(), decode(h)?);
                params.insert("port".into(), p.to_owned());
            }
            _ => {
                params.insert("host".into(), decode(hostport)?);
            }
        }
    }
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        params.insert("dbname".into(), decode(path)?);
    }
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(decode(k)?, decode(v)?);
    }
    Ok(params)
}

fn parse_keywords(text: &str) -> Result<HashMap<String, String>, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!(
                "`{key}` has no `=value`; write `key=value` pairs or a `postgresql://` URL"
            ));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("the quoted value of `{key}` has no closing `'`"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        params.insert(key, value);
    }
    Ok(params)
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a `%` in the URL is not followed by two hex digits".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL decodes to invalid UTF-8".to_owned())
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The password for `info` from a libpq password file (`host:port:db:user:password`, `*`
/// matches anything, `\` escapes). As libpq does, a file readable by group or others is ignored.
fn lookup_passfile(path: &Path, info: &ConnInfo) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let host = if info.host.starts_with('/') {
        "localhost"
    } else {
        info.host.as_str()
    };
    let port = info.port.to_string();
    let wanted = [
        host,
        port.as_str(),
        info.dbname.as_str(),
        info.user.as_str(),
    ];
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_passfile_line(line);
        if fields.len() < 5 {
            continue;
        }
        if fields[..4]
            .iter()
            .zip(wanted)
            .all(|(f, w)| f == "*" || f == w)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

fn split_passfile_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields
                .last_mut()
                .into_iter()
                .for_each(|f| f.extend(chars.next())),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().into_iter().for_each(|f| f.push(c)),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn without_a_password_no_password_file_is_read_and_none_warns() {
        let info = ConnInfo::parse("postgresql://app@db.example/shop", &env(&[])).unwrap();
        let child = info.child_env(&[("PGPASSFILE".into(), "/home/u/.pgpass".into())], None);
        let files: Vec<&str> = child
            .iter()
            .filter(|(k, _)| k == "PGPASSFILE")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(files, [NO_PASSFILE]);
        // libpq skips a password file it cannot stat, silently; `/dev/null` made it warn.
        assert!(std::fs::metadata(NO_PASSFILE).is_err());
    }

    #[test]
    fn url_and_keywords_give_the_same_connection() {
        let e = env(&[]);
        let a = ConnInfo::parse(
            "postgresql://app:p%40ss%3Aw@db.example:6543/shop?sslmode=disable&application_name=x",
            &e,
        )
        .unwrap();
        let b = ConnInfo::parse(
            "host=db.example port=6543 user=app password='p@ss:w' dbname=shop sslmode=disable application_name=x",
            &e,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.password.as_deref(), Some("p@ss:w"));
        assert_eq!(a.display(), "app@db.example:6543/shop");
        assert!(!format!("{a:?}").contains("p@ss"));
    }

    #[test]
    fn environment_fills_what_the_string_leaves_out() {
        let e = env(&[
            ("PGHOST", "10.0.0.5"),
            ("PGPORT", "5433"),
            ("PGUSER", "deploy"),
            ("PGPASSWORD", "from-env"),
            ("PGDATABASE", "envdb"),
        ]);
        let c = ConnInfo::parse("dbname=shop", &e).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str(), c.dbname.as_str()),
            ("10.0.0.5", 5433, "deploy", "shop")
        );
        assert_eq!(c.password.as_deref(), Some("from-env"));
        let c = ConnInfo::parse("postgresql://other@/x?host=/tmp/sock", &e).unwrap();
        assert_eq!((c.host.as_str(), c.user.as_str()), ("/tmp/sock", "other"));
        let c = ConnInfo::parse("postgres://[::1]:7000/d", &env(&[])).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 7000));
    }

    #[test]
    fn passfile_is_read_like_libpq_and_ignored_when_others_can_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:*:*:*:nope\ndb1:5432:*:app:se\\:cret\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = env(&[("PGPASSFILE", file.to_str().unwrap())]);
        let c = ConnInfo::parse("host=db1 user=app dbname=x", &e).unwrap();
        assert_eq!(c.password.as_deref(), Some("se:cret"));
        let c = ConnInfo::parse("host=db2 user=app dbname=x", &e).unwrap();
        assert_eq!(c.password.as_deref(), Some("fallback"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = ConnInfo::parse("host=db1 user=app dbname=x", &e).unwrap();
        assert_eq!(c.password, None);
    }

    #[test]
    fn tools_never_inherit_a_variable_holding_the_password() {
        let url = "postgresql://app:Pw-9z@db:5432/shop";
        let c = ConnInfo::parse(url, &env(&[])).unwrap();
        let inherited = [
            ("DATABASE_URL".to_owned(), url.to_owned()),
            ("APP_ENV".to_owned(), "production".to_owned()),
        ];
        let tool = c.tool_env(&inherited, None);
        assert!(!tool.iter().any(|(_, v)| v.contains("Pw-9z")), "{tool:?}");
        assert!(tool.contains(&("APP_ENV".into(), "production".into())));
        let script = c.child_env(&inherited, None);
        assert!(script.contains(&("DATABASE_URL".into(), url.into())));
    }

    #[test]
    fn libpq_only_keys_parse_and_bad_input_is_explained() {
        let c = ConnInfo::parse(
            "postgresql://u@h/d?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.sslmode, "verify-full");
        assert!(c.tokio_config().unwrap_err().contains("needs TLS"));
        let child = c.child_env(&[("PGPASSWORD".into(), "leak".into())], None);
        assert!(child.contains(&("PGSSLROOTCERT".into(), "/etc/ca.pem".into())));
        assert!(!child.iter().any(|(k, _)| k == "PGPASSWORD"));
        for bad in [
            "host=a bogus=1",
            "host",
            "port=70000",
            "password='open",
            "postgresql://u@h/d?sslmode=maybe",
            "postgresql://h1,h2/d",
        ] {
            assert!(ConnInfo::parse(bad, &env(&[])).is_err(), "{bad}");
        }
    }

    #[test]
    fn written_passwords_are_hidden_in_descriptions() {
        assert_eq!(
            hide_password("postgresql://u:pw@h/d"),
            "postgresql://u:***@h/d"
        );
        assert_eq!(
            hide_password("postgresql://u@h/d?password=x&a=b"),
            "postgresql://u@h/d?password=***&a=b"
        );
        assert_eq!(
            hide_password("host=h password='a b' user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(hide_password("${DATABASE_URL}"), "${DATABASE_URL}");
    }

    #[test]
    fn published_url_has_no_password() {
        let c =
            ConnInfo::parse("postgresql://app:hunter22@127.0.0.1:5999/shop", &env(&[])).unwrap();
        let url = c.url_without_password(Some(Path::new("/run/x.pgpass")));
        assert_eq!(
            url,
            "postgresql://app@127.0.0.1:5999/shop?passfile=%2Frun%2Fx.pgpass"
        );
        let e = env(&[]);
        let back = ConnInfo::parse(&url, &e);
        assert!(back.is_ok());
        assert_eq!(c.mask("x hunter22 y"), "x *** y");
        let c = ConnInfo::parse("postgresql://app:hunter%4022@h/shop", &env(&[])).unwrap();
        assert_eq!(
            c.mask("hunter@22 in postgresql://app:hunter%4022@h/shop"),
            "*** in postgresql://app:***@h/shop"
        );
    }
}
