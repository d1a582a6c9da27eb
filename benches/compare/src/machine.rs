//! What the run was made on: date, CPU, cores, kernel, the filesystem under the data.

use std::path::Path;

/// A description of this machine for the chart's title and the Markdown header.
#[derive(Clone, Debug)]
pub struct Machine {
    /// UTC date, `YYYY-MM-DD`.
    pub date: String,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// Cores available to this process.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Filesystem type and device under the data directory.
    pub filesystem: String,
}

impl Machine {
    /// Reads the description; a part that cannot be read is "unknown".
    pub fn describe(data_dir: &Path) -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|x| x.1.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
        Machine {
            date: today(),
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            kernel: if kernel.is_empty() {
                "unknown".into()
            } else {
                kernel
            },
            filesystem: filesystem(data_dir, &read("/proc/mounts")),
        }
    }

    /// One line: date, CPU, cores, kernel, filesystem.
    pub fn line(&self) -> String {
        format!(
            "{}, {}, {} cores, Linux {}, {}",
            self.date, self.cpu, self.cores, self.kernel, self.filesystem
        )
    }
}

/// The type and device of the mount holding `dir` (the longest mount point that
/// prefixes it).
fn filesystem(dir: &Path, mounts: &str) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, at, kind) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(at)
                .then(|| (at.len(), format!("{kind} on {dev}")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown filesystem".into(), |(_, fs)| fs)
}

/// Today's UTC date from the system clock (days since the epoch to a civil date).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil(secs / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(59), (1970, 3, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(20_413), (2025, 11, 21));
    }

    #[test]
    fn filesystem_is_the_longest_mount_prefix() {
        let mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n";
        assert_eq!(filesystem(Path::new("/tmp/x"), mounts), "tmpfs on tmpfs");
        assert_eq!(filesystem(Path::new("/work/x"), mounts), "ext4 on /dev/vda");
    }
}
