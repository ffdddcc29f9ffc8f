//! Reads the benchmark datasets: texmex `.fvecs` / `.bvecs` / `.ivecs` files
//! laid out as ../shared/datasets/README.md describes.

use ann::Metric;
use std::path::{Path, PathBuf};

/// One dataset directory loaded into memory.
pub struct Dataset {
    /// Directory name, e.g. `fashion-mnist-784-euclidean`.
    pub name: String,
    /// Coordinates per vector.
    pub dim: usize,
    /// Base vectors, row-major.
    pub base: Vec<f32>,
    /// Query vectors, row-major.
    pub queries: Vec<f32>,
    /// Nearest base ids per query (100 per row).
    pub groundtruth: Vec<Vec<u32>>,
    /// The metric the ground truth was computed with.
    pub metric: Metric,
    dir: PathBuf,
}

impl Dataset {
    /// Loads `dir`; the metric comes from the name's suffix (`-euclidean`,
    /// `-cosine`/`-angular`, `-dot`/`-ip`).
    pub fn load(dir: &Path) -> Result<Dataset, String> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: not a dataset directory", dir.display()))?
            .to_string();
        let metric = if name.ends_with("-euclidean") || name.ends_with("-l2") {
            Metric::L2
        } else if name.ends_with("-cosine") || name.ends_with("-angular") {
            Metric::Cosine
        } else if name.ends_with("-dot") || name.ends_with("-ip") {
            Metric::InnerProduct
        } else {
            return Err(format!(
                "{name}: cannot tell the metric; the directory name must end in -euclidean, -cosine, -angular, -dot or -ip"
            ));
        };
        let (dim, base) = read_vectors(dir, "base")?;
        let (qdim, queries) = read_vectors(dir, "query")?;
        if qdim != dim {
            return Err(format!(
                "{name}: queries have {qdim} dimensions, base has {dim}"
            ));
        }
        let groundtruth = read_ivecs(&dir.join("groundtruth.ivecs"))?;
        Ok(Dataset {
            name,
            dim,
            base,
            queries,
            groundtruth,
            metric,
            dir: dir.to_path_buf(),
        })
    }

    /// Number of base vectors.
    pub fn len(&self) -> usize {
        self.base.len() / self.dim
    }

    /// Query `i`'s coordinates.
    pub fn query(&self, i: usize) -> &[f32] {
        &self.queries[i * self.dim..(i + 1) * self.dim]
    }

    /// Base vector `i`'s coordinates.
    pub fn base_vector(&self, i: usize) -> &[f32] {
        &self.base[i * self.dim..(i + 1) * self.dim]
    }

    /// Number of queries.
    pub fn query_count(&self) -> usize {
        self.queries.len() / self.dim
    }

    /// The base vectors' metadata from `base.meta.tsv` (PyPI: name,
    /// month, summary): the column names after `id`, and one row of texts
    /// per base vector, in vector order.
    pub fn metadata(&self) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
        let path = self.dir.join("base.meta.tsv");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split('\t')
            .skip(1)
            .map(str::to_string)
            .collect();
        let rows: Vec<Vec<String>> = lines
            .map(|l| l.split('\t').skip(1).map(str::to_string).collect())
            .collect();
        if rows.len() != self.len() || rows.iter().any(|r| r.len() != header.len()) {
            return Err(format!(
                "{}: expected {} rows of {} columns after the header",
                path.display(),
                self.len(),
                header.len() + 1
            ));
        }
        Ok((header, rows))
    }

    /// The label-filtered workload: base labels, query labels and the
    /// filtered ground truth (query with label L matches base rows labelled
    /// (L + 1) % 10).
    pub fn label_filter(&self) -> Result<LabelFilter, String> {
        let base = read_labels(&self.dir, "base")?;
        let queries = read_labels(&self.dir, "query")?;
        if base.len() != self.len() || queries.len() != self.query_count() {
            return Err(format!(
                "{}: label files do not match the vector counts",
                self.name
            ));
        }
        let groundtruth = read_ivecs(&self.dir.join("filtered-groundtruth.ivecs"))?;
        Ok(LabelFilter {
            base,
            queries,
            groundtruth,
        })
    }
}

/// Labels and ground truth for the 10%-selectivity filtered queries.
pub struct LabelFilter {
    /// Label of each base vector.
    pub base: Vec<u8>,
    /// Label of each query.
    pub queries: Vec<u8>,
    /// Nearest matching base ids per query.
    pub groundtruth: Vec<Vec<u32>>,
}

impl LabelFilter {
    /// The base label query `i` asks for.
    pub fn wanted(&self, i: usize) -> u8 {
        (self.queries[i] + 1) % 10
    }
}

fn read_labels(dir: &Path, stem: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(format!("{stem}.labels.u8"));
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads `{stem}.fvecs` or, failing that, `{stem}.bvecs` as f32 rows.
fn read_vectors(dir: &Path, stem: &str) -> Result<(usize, Vec<f32>), String> {
    let fvecs = dir.join(format!("{stem}.fvecs"));
    if fvecs.exists() {
        return read_texmex(&fvecs, 4, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    }
    read_texmex(&dir.join(format!("{stem}.bvecs")), 1, |c| c[0] as f32)
}

fn read_ivecs(path: &Path) -> Result<Vec<Vec<u32>>, String> {
    let (dim, flat) = read_texmex(path, 4, |c| {
        i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u32
    })?;
    Ok(flat.chunks_exact(dim).map(|r| r.to_vec()).collect())
}

/// Reads texmex records (`int32 d`, then `d` elements of `elem` bytes).
fn read_texmex<T>(
    path: &Path,
    elem: usize,
    convert: impl Fn(&[u8]) -> T,
) -> Result<(usize, Vec<T>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |why: &str| format!("{}: {why}", path.display());
    if bytes.len() < 4 {
        return Err(bad("empty file"));
    }
    let dim = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if dim <= 0 {
        return Err(bad("non-positive dimension"));
    }
    let dim = dim as usize;
    let record = 4 + dim * elem;
    if bytes.len() % record != 0 {
        return Err(bad("size is not a whole number of records"));
    }
    let mut out = Vec::with_capacity(bytes.len() / record * dim);
    for r in bytes.chunks_exact(record) {
        if r[0..4] != bytes[0..4] {
            return Err(bad("records disagree on the dimension"));
        }
        out.extend(r[4..].chunks_exact(elem).map(&convert));
    }
    Ok((dim, out))
}
