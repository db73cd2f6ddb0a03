//! Host datasets: IDX (MNIST) and numeric CSV files, plain or gzip-compressed.
//!
//! Every loader returns a [`Dataset`] or a [`DataError`] naming the file; bad
//! input (truncated, corrupt, ragged, non-numeric, non-UTF-8, empty) is an
//! error, never a panic, because these files come from users and the CLI must
//! be able to print the problem and exit cleanly.
//!
//! Compression is detected from the gzip magic bytes rather than the file
//! name, so `train-images-idx3-ubyte.gz`, a decompressed copy, or a gzip file
//! without the suffix all load the same way.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};

/// A whole dataset held in host memory, sample-major: axis 0 of `x` and `y`
/// is the sample index.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Features, `[n, ...]` (for example `[n, 28, 28]` for MNIST, `[n, 64]`
    /// for the digits CSV).
    pub x: ArrayD<f32>,
    /// Labels, `[n]`: class ids stored as exact small integers in `f32` when
    /// `y_is_class`, otherwise regression targets (`[n]` or `[n, k]`).
    pub y: ArrayD<f32>,
    pub y_is_class: bool,
    /// For class labels, one more than the largest label seen.
    pub num_classes: Option<usize>,
    /// Short name for messages and logs (the file name without extensions).
    pub name: String,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.shape().first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shape of one sample's features (`x` without the leading sample axis).
    pub fn feature_shape(&self) -> &[usize] {
        self.x.shape().get(1..).unwrap_or(&[])
    }

    /// Number of scalar features per sample (product of [`feature_shape`]).
    ///
    /// [`feature_shape`]: Dataset::feature_shape
    pub fn feature_len(&self) -> usize {
        self.feature_shape().iter().product()
    }

    /// The same data with each sample flattened to one row, `[n, features]`:
    /// what a dense first layer expects.
    pub fn flattened(&self) -> Dataset {
        let shape = [self.len(), self.feature_len()];
        // `as_standard_layout` copies only if `x` is not already C-contiguous,
        // which is what makes the reshape below valid.
        let x = self
            .x
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&shape))
            .expect("element count is unchanged by flattening");
        Dataset { x, ..self.clone() }
    }

    /// Samples per class, indexed by class id; `None` for regression targets.
    pub fn class_counts(&self) -> Option<Vec<usize>> {
        if !self.y_is_class {
            return None;
        }
        let mut counts = vec![0usize; self.num_classes.unwrap_or(0)];
        for &label in self.y.iter() {
            let class = label as usize;
            if class >= counts.len() {
                counts.resize(class + 1, 0);
            }
            counts[class] += 1;
        }
        Some(counts)
    }
}

/// A loading failure, always tied to the file it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError {
    /// The diagnostic code: E0601 (cannot read), or a more precise one
    /// (E0605 an id outside the vocabulary, E0606 text that is not UTF-8).
    pub code: &'static str,
    pub path: PathBuf,
    pub message: String,
    /// The argument of the data source whose value is at fault (`label`
    /// for a label column the file does not have), so the diagnostic can
    /// point at it, and a value that would read the file, if there is one.
    pub argument: Option<(&'static str, Option<String>)>,
}

impl DataError {
    pub(crate) fn new(path: &Path, message: impl Into<String>) -> DataError {
        DataError::coded("E0601", path, message)
    }

    pub(crate) fn coded(code: &'static str, path: &Path, message: impl Into<String>) -> DataError {
        DataError {
            code,
            path: path.to_path_buf(),
            message: message.into(),
            argument: None,
        }
    }

    /// The same error, blamed on the source's argument `name`.
    pub(crate) fn at_argument(mut self, name: &'static str, replacement: Option<String>) -> DataError {
        self.argument = Some((name, replacement));
        self
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for DataError {}

// ---------------------------------------------------------------------------
// Opening files, plain or gzip
// ---------------------------------------------------------------------------

/// An open input file, already wrapped in a decompressor when needed.
///
/// The decompressor is not buffered on its output side: IDX header reads ask
/// for 4 and then `4 · ndims` bytes and get exactly that much decompressed,
/// not a buffer's worth. Line-oriented CSV reading adds its own buffer.
struct Source {
    reader: Box<dyn Read>,
    gzip: bool,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn open(path: &Path) -> Result<Source, DataError> {
    let file = File::open(path).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::NotFound => "file not found".to_string(),
            _ => format!("cannot open: {e}"),
        };
        DataError::new(path, why)
    })?;
    let mut file = BufReader::new(file);
    // Peek at the first two bytes by reading them and chaining them back in
    // front: `fill_buf` alone may legally return a single byte.
    let mut head = [0u8; 2];
    let got = read_up_to(&mut file, &mut head).map_err(|e| read_error(path, false, &e))?;
    let gzip = got == 2 && head == GZIP_MAGIC;
    let rest = Cursor::new(head[..got].to_vec()).chain(file);
    let reader: Box<dyn Read> = if gzip {
        // Multi-member aware: `gzip a b > c` style concatenations are valid
        // gzip files and must decode completely.
        Box::new(flate2::bufread::MultiGzDecoder::new(rest))
    } else {
        Box::new(rest)
    };
    Ok(Source { reader, gzip })
}

fn read_error(path: &Path, gzip: bool, e: &io::Error) -> DataError {
    if gzip {
        DataError::new(path, format!("cannot decompress gzip data: {e}"))
    } else {
        DataError::new(path, format!("read error: {e}"))
    }
}

/// Read until `buf` is full or the input ends; returns the count read.
/// Unlike `read_exact`, a short input is not an error here, so callers can
/// say how many bytes were actually present.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// `foo.csv.gz` → `foo`, `train-images-idx3-ubyte` → itself.
fn dataset_name(path: &Path) -> String {
    let mut name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for ext in [".gz", ".csv"] {
        if let Some(stripped) = name.strip_suffix(ext) {
            name = stripped.to_string();
        }
    }
    name
}

// ---------------------------------------------------------------------------
// IDX
// ---------------------------------------------------------------------------

/// The IDX element-type byte for unsigned bytes, the only type MNIST uses.
const IDX_U8: u8 = 0x08;

fn read_idx_dims(src: &mut Source, path: &Path) -> Result<Vec<usize>, DataError> {
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut src.reader, &mut magic).map_err(|e| read_error(path, src.gzip, &e))?;
    if got == 0 {
        return Err(DataError::new(path, "empty file: expected an IDX header"));
    }
    if got < 4 {
        return Err(DataError::new(
            path,
            format!("truncated IDX header: only {got} bytes, the magic number alone needs 4"),
        ));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::new(
            path,
            format!(
                "not an IDX file: magic number 0x{:08x} must start with two zero bytes",
                u32::from_be_bytes(magic)
            ),
        ));
    }
    if magic[2] != IDX_U8 {
        return Err(DataError::new(
            path,
            format!(
                "unsupported IDX element type 0x{:02x}: only unsigned bytes (0x08) are supported",
                magic[2]
            ),
        ));
    }
    let ndims = magic[3] as usize;
    if ndims == 0 {
        return Err(DataError::new(path, "IDX header declares zero dimensions"));
    }
    let mut raw = vec![0u8; 4 * ndims];
    let got = read_up_to(&mut src.reader, &mut raw).map_err(|e| read_error(path, src.gzip, &e))?;
    if got < raw.len() {
        return Err(DataError::new(
            path,
            format!(
                "truncated IDX header: {ndims} dimensions need {} bytes, found {}",
                4 + raw.len(),
                4 + got
            ),
        ));
    }
    Ok(raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect())
}

/// Dimensions of an IDX file from its header alone: reads (and, for gzip,
/// decompresses) only the first `4 + 4 * ndims` bytes, so asking for MNIST's
/// image shape costs microseconds instead of a 47 MB decompression.
pub fn idx_header(path: &Path) -> Result<Vec<usize>, DataError> {
    let mut src = open(path)?;
    read_idx_dims(&mut src, path)
}

/// Read a whole IDX file of unsigned bytes. The data must be exactly as long
/// as the header declares: a short file is truncated, a longer one is not
/// the file its header describes; both are errors.
pub fn read_idx(path: &Path) -> Result<ArrayD<u8>, DataError> {
    let mut src = open(path)?;
    let dims = read_idx_dims(&mut src, path)?;
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::new(path, format!("IDX dimensions {dims:?} overflow the address space")))?;
    // Don't trust the header for the allocation size: a corrupt header could
    // claim gigabytes. Start bounded and let the vector grow with real data.
    let mut data = Vec::with_capacity(expected.min(64 << 20));
    // One byte past the declared size is enough to detect trailing data.
    let limit = (expected as u64).saturating_add(1);
    (&mut src.reader)
        .take(limit)
        .read_to_end(&mut data)
        .map_err(|e| read_error(path, src.gzip, &e))?;
    if data.len() < expected {
        return Err(DataError::new(
            path,
            format!(
                "truncated IDX data: header declares {dims:?} ({expected} bytes) but only {} bytes follow",
                data.len()
            ),
        ));
    }
    if data.len() > expected {
        return Err(DataError::new(
            path,
            format!("IDX file is longer than its header declares ({dims:?}, {expected} data bytes)"),
        ));
    }
    ArrayD::from_shape_vec(IxDyn(&dims), data).map_err(|e| DataError::new(path, format!("cannot shape IDX data as {dims:?}: {e}")))
}

/// Load an IDX image file and its IDX label file as one classification
/// dataset. Pixels are scaled from 0..=255 to [0, 1]; `x` keeps the image
/// file's shape (`[n, rows, cols]`), `y` is `[n]`.
pub fn load_idx_pair(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let pixels = read_idx(images)?;
    let label_bytes = read_idx(labels)?;
    if label_bytes.ndim() != 1 {
        return Err(DataError::new(
            labels,
            format!("a label file must have 1 dimension, this one has shape {:?}", label_bytes.shape()),
        ));
    }
    let n_images = pixels.shape()[0];
    let n_labels = label_bytes.len();
    if n_images != n_labels {
        return Err(DataError::new(
            labels,
            format!("has {n_labels} labels but {} has {n_images} images", images.display()),
        ));
    }
    let x = pixels.mapv(|p| f32::from(p) / 255.0);
    let num_classes = label_bytes.iter().max().map_or(0, |&m| m as usize + 1);
    let y = label_bytes.mapv(f32::from);
    Ok(Dataset {
        x,
        y,
        y_is_class: true,
        num_classes: Some(num_classes),
        name: dataset_name(images),
    })
}

const MNIST_TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const MNIST_TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const MNIST_TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const MNIST_TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The standard file `base` in `dir`, decompressed copy preferred (faster to
/// read), else `base.gz`.
fn mnist_file(dir: &Path, base: &str) -> Result<PathBuf, DataError> {
    if !dir.is_dir() {
        return Err(DataError::new(dir, "MNIST directory not found"));
    }
    let plain = dir.join(base);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{base}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::new(&plain, format!("file not found (nor {base}.gz)")))
}

/// Load MNIST's `(train, test)` from the four standard file names in `dir`,
/// each either gzip-compressed (`.gz`) or not.
pub fn load_mnist(dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    let mut train = load_idx_pair(&mnist_file(dir, MNIST_TRAIN_IMAGES)?, &mnist_file(dir, MNIST_TRAIN_LABELS)?)?;
    let mut test = load_idx_pair(&mnist_file(dir, MNIST_TEST_IMAGES)?, &mnist_file(dir, MNIST_TEST_LABELS)?)?;
    train.name = "mnist-train".into();
    test.name = "mnist-test".into();
    // Both splits must agree on the class count even if one lacks the top
    // class, or one-hot encodings would differ in width.
    let classes = train.num_classes.max(test.num_classes);
    train.num_classes = classes;
    test.num_classes = classes;
    Ok((train, test))
}

/// `[rows, cols]` of one MNIST image, from the training images' header only.
pub fn mnist_shape(dir: &Path) -> Result<Vec<usize>, DataError> {
    let path = mnist_file(dir, MNIST_TRAIN_IMAGES)?;
    let dims = idx_header(&path)?;
    if dims.len() != 3 {
        return Err(DataError::new(
            &path,
            format!("expected an image file with 3 dimensions [n, rows, cols], found {dims:?}"),
        ));
    }
    Ok(dims[1..].to_vec())
}

// ---------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------

/// Which column holds the class label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// 0-based; negative counts from the end (`-1` is the last column).
    Index(isize),
    /// Looked up in the header row.
    Name(String),
}

/// Whether the first line is a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// Treat the first line as a header when it has a non-numeric field or
    /// a different field count from the second line (iris's metadata line
    /// `150,4,setosa,versicolor,virginica` is both).
    Auto,
    Yes,
    No,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    pub label: LabelColumn,
    pub header: Header,
    /// Multiply every feature by this (e.g. `1/16` for the digits CSV).
    pub scale: Option<f32>,
    /// The label column holds regression targets (any finite number), not
    /// class ids: `csv(..., target: "price")`.
    pub regression: bool,
}

impl Default for CsvOptions {
    /// Label in the last column, header auto-detected, no scaling: right for
    /// both shipped CSVs (digits, iris).
    fn default() -> CsvOptions {
        CsvOptions {
            label: LabelColumn::Index(-1),
            header: Header::Auto,
            scale: None,
            regression: false,
        }
    }
}

/// Non-blank lines of a text file with 1-based line numbers.
struct Lines {
    src: BufReader<Box<dyn Read>>,
    gzip: bool,
    path: PathBuf,
    line_no: usize,
    buf: Vec<u8>,
}

impl Lines {
    fn open(path: &Path) -> Result<Lines, DataError> {
        let Source { reader, gzip } = open(path)?;
        Ok(Lines {
            src: BufReader::new(reader),
            gzip,
            path: path.to_path_buf(),
            line_no: 0,
            buf: Vec::new(),
        })
    }

    /// The next non-blank line, without its line ending.
    fn next_line(&mut self) -> Result<Option<(usize, String)>, DataError> {
        loop {
            self.buf.clear();
            let n = self
                .src
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| read_error(&self.path, self.gzip, &e))?;
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            // Decode per line so a bad byte is reported with its line.
            let text = std::str::from_utf8(&self.buf).map_err(|e| {
                DataError::new(
                    &self.path,
                    format!(
                        "line {}: not valid UTF-8 (bad byte at offset {} in the line)",
                        self.line_no,
                        e.valid_up_to()
                    ),
                )
            })?;
            let mut text = text.trim_end_matches(['\n', '\r']);
            if self.line_no == 1 {
                // Spreadsheet exports often start with a byte-order mark.
                text = text.strip_prefix('\u{feff}').unwrap_or(text);
            }
            if !text.trim().is_empty() {
                return Ok(Some((self.line_no, text.to_string())));
            }
        }
    }
}

fn split_fields(line: &str) -> Vec<&str> {
    line.split(',').map(str::trim).collect()
}

fn parses_as_number(field: &str) -> bool {
    field.parse::<f32>().is_ok()
}

/// The start of a CSV file: the first data line, after any header row.
struct Prelude {
    first: (usize, String),
    /// A data line already read while deciding about the header.
    second: Option<(usize, String)>,
    /// Number of fields in every data row.
    cols: usize,
    /// Resolved 0-based label column.
    label: usize,
}

fn read_prelude(lines: &mut Lines, opts: &CsvOptions) -> Result<Prelude, DataError> {
    let path = lines.path.clone();
    let Some(l1) = lines.next_line()? else {
        return Err(DataError::new(&path, "empty file: no data rows"));
    };
    let (header, first, second) = match opts.header {
        Header::No => (None, Some(l1), None),
        Header::Yes => (Some(l1), lines.next_line()?, None),
        Header::Auto => {
            let l2 = lines.next_line()?;
            let f1 = split_fields(&l1.1);
            let non_numeric = !f1.iter().all(|f| parses_as_number(f));
            let count_differs = l2.as_ref().is_some_and(|l2| split_fields(&l2.1).len() != f1.len());
            if non_numeric || count_differs {
                (Some(l1), l2, None)
            } else {
                (None, Some(l1), l2)
            }
        }
    };
    let Some(first) = first else {
        return Err(DataError::new(&path, "no data rows after the header"));
    };
    let cols = split_fields(&first.1).len();
    if cols < 2 {
        return Err(DataError::new(
            &path,
            format!(
                "line {}: a row needs at least 2 fields (features and a label), found {cols}",
                first.0
            ),
        ));
    }
    let label = match &opts.label {
        LabelColumn::Index(i) => {
            let resolved = if *i < 0 { cols as isize + i } else { *i };
            if resolved < 0 || resolved >= cols as isize {
                // The usual place of a label is the last column.
                return Err(
                    DataError::new(&path, format!("label column {i} is out of range for rows of {cols} fields"))
                        .at_argument("label", (cols > 1).then(|| format!("{}", cols - 1))),
                );
            }
            resolved as usize
        }
        LabelColumn::Name(name) => {
            let Some((hline, htext)) = &header else {
                return Err(DataError::new(
                    &path,
                    format!("label column `{name}` is given by name but the file has no header row"),
                )
                .at_argument("label", None));
            };
            let names: Vec<&str> = split_fields(htext).into_iter().map(|f| f.trim_matches('"')).collect();
            if names.len() != cols {
                return Err(DataError::new(
                    &path,
                    format!(
                        "line {hline}: header has {} fields but data rows have {cols}, so column names are ambiguous",
                        names.len()
                    ),
                ));
            }
            names.iter().position(|n| n == name).ok_or_else(|| {
                let closest = crate::diag::suggest(name, names.iter().copied());
                DataError::new(
                    &path,
                    format!("line {hline}: no column named `{name}` in the header ({})", names.join(", ")),
                )
                .at_argument("label", closest.map(|n| format!("{n:?}")))
            })?
        }
    };
    Ok(Prelude {
        first,
        second,
        cols,
        label,
    })
}

/// The largest class id a label may be. Labels are stored in `f32` (exact
/// to 2^24) and become `i32` for the model, and a metric's confusion
/// matrix is classes²: a label in the millions is a regression target or
/// the wrong `label:` column, not a class, and is refused when loading.
pub const MAX_CLASS_ID: u32 = 65_535;

/// Labels are class ids: integers in 0..=MAX_CLASS_ID.
fn parse_class_id(field: &str) -> Option<f32> {
    let v: f64 = field.parse().ok()?;
    (v >= 0.0 && v.fract() == 0.0 && v <= f64::from(MAX_CLASS_ID)).then_some(v as f32)
}

/// Load a numeric CSV (plain or gzip) for classification: features become
/// `x: [n, cols - 1]` (multiplied by `scale` if given), the label column
/// becomes class ids in `y: [n]`. Blank lines are skipped. Error messages
/// count lines and columns from 1, as editors do.
pub fn load_csv(path: &Path, opts: &CsvOptions) -> Result<Dataset, DataError> {
    let mut lines = Lines::open(path)?;
    let prelude = read_prelude(&mut lines, opts)?;
    let Prelude { cols, label, .. } = prelude;
    let mut features: Vec<f32> = Vec::new();
    let mut labels: Vec<f32> = Vec::new();
    let mut max_label = 0.0f32;
    let scale = opts.scale.unwrap_or(1.0);

    let mut parse_row = |line_no: usize, text: &str| -> Result<(), DataError> {
        let fields = split_fields(text);
        if fields.len() != cols {
            return Err(DataError::new(
                path,
                format!(
                    "line {line_no}: expected {cols} fields like the first data row, found {}",
                    fields.len()
                ),
            ));
        }
        for (c, field) in fields.iter().enumerate() {
            if c == label && opts.regression {
                let v: f32 = field.parse().ok().filter(|v: &f32| v.is_finite()).ok_or_else(|| {
                    DataError::new(
                        path,
                        format!("line {line_no}, column {}: target `{field}` is not a finite number", c + 1),
                    )
                })?;
                labels.push(v);
            } else if c == label {
                let id = parse_class_id(field).ok_or_else(|| {
                    DataError::new(
                        path,
                        format!(
                            "line {line_no}, column {}: label `{field}` is not a class id (an integer from 0 to {MAX_CLASS_ID})",
                            c + 1
                        ),
                    )
                })?;
                max_label = max_label.max(id);
                labels.push(id);
            } else {
                let v: f32 = field
                    .parse()
                    .map_err(|_| DataError::new(path, format!("line {line_no}, column {}: `{field}` is not a number", c + 1)))?;
                // NaN or inf would silently poison every gradient downstream;
                // so would a finite value that the scale overflows.
                if !v.is_finite() {
                    return Err(DataError::new(
                        path,
                        format!("line {line_no}, column {}: `{field}` is not a finite number", c + 1),
                    ));
                }
                if !(v * scale).is_finite() {
                    return Err(DataError::new(
                        path,
                        format!(
                            "line {line_no}, column {}: `{field}` times the scale {scale} is not a finite f32",
                            c + 1
                        ),
                    ));
                }
                features.push(v * scale);
            }
        }
        Ok(())
    };

    parse_row(prelude.first.0, &prelude.first.1)?;
    if let Some((n, text)) = &prelude.second {
        parse_row(*n, text)?;
    }
    while let Some((n, text)) = lines.next_line()? {
        parse_row(n, &text)?;
    }

    let n = labels.len();
    let x = ArrayD::from_shape_vec(IxDyn(&[n, cols - 1]), features)
        .map_err(|e| DataError::new(path, format!("internal error shaping features: {e}")))?;
    let y = ArrayD::from_shape_vec(IxDyn(&[n]), labels).map_err(|e| DataError::new(path, format!("internal error shaping labels: {e}")))?;
    Ok(Dataset {
        x,
        y,
        y_is_class: !opts.regression,
        num_classes: (!opts.regression).then_some(max_label as usize + 1),
        name: dataset_name(path),
    })
}

/// What the labels of a dataset hold, for checking them against the model
/// before training: one more than the largest class id, or the first value
/// that is not a class id (`(line, text)`).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelSummary {
    pub classes: usize,
    /// Where (`data.csv, line 2, column 3`) and what.
    pub not_a_class: Option<(String, String)>,
}

/// The label column of a CSV file, read without the features.
pub fn csv_label_summary(path: &Path, opts: &CsvOptions) -> Result<LabelSummary, DataError> {
    let mut lines = Lines::open(path)?;
    let prelude = read_prelude(&mut lines, opts)?;
    let mut classes = 0;
    let name = path
        .file_name()
        .map_or(path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut check = |line_no: usize, text: &str| -> Option<(String, String)> {
        let field = split_fields(text).get(prelude.label).copied().unwrap_or("").to_string();
        match parse_class_id(&field) {
            Some(id) => {
                classes = classes.max(id as usize + 1);
                None
            }
            None => Some((format!("{name}, line {line_no}, column {}", prelude.label + 1), field)),
        }
    };
    let mut not_a_class = check(prelude.first.0, &prelude.first.1);
    if let (None, Some((n, t))) = (&not_a_class, &prelude.second) {
        not_a_class = check(*n, t);
    }
    while not_a_class.is_none() {
        let Some((n, text)) = lines.next_line()? else { break };
        not_a_class = check(n, &text);
    }
    Ok(LabelSummary { classes, not_a_class })
}

/// One more than the largest label of an IDX label file.
pub fn idx_label_summary(path: &Path) -> Result<LabelSummary, DataError> {
    let labels = read_idx(path)?;
    Ok(LabelSummary {
        classes: labels.iter().max().map_or(0, |&m| m as usize + 1),
        not_a_class: None,
    })
}

/// MNIST's training and test labels.
pub fn mnist_label_summary(dir: &Path) -> Result<LabelSummary, DataError> {
    let train = idx_label_summary(&mnist_file(dir, MNIST_TRAIN_LABELS)?)?;
    let test = idx_label_summary(&mnist_file(dir, MNIST_TEST_LABELS)?)?;
    Ok(LabelSummary {
        classes: train.classes.max(test.classes),
        ..train
    })
}

/// Number of feature columns (all but the label), from the header and first
/// data line only: lets the compiler size a model's input without reading
/// the whole file.
pub fn csv_feature_count(path: &Path, opts: &CsvOptions) -> Result<usize, DataError> {
    let mut lines = Lines::open(path)?;
    let prelude = read_prelude(&mut lines, opts)?;
    Ok(prelude.cols - 1)
}
