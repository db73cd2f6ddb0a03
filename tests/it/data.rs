//! Runtime data handling: loaders on the real datasets, loader errors on
//! small generated files, deterministic splitting and batching, metrics on
//! hand-computed examples.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{array, ArrayD, IxDyn};
use nnc::runtime::batch::{for_each_batch, rows, Flow};
use nnc::runtime::data::{
    csv_feature_count, idx_header, load_csv, load_idx_pair, load_mnist, mnist_shape, read_idx, CsvOptions, DataError, Dataset, Header,
    LabelColumn,
};
use nnc::runtime::metrics::{self, ConfusionMatrix, MetricError};
use nnc::runtime::split::{one_hot, shuffle_indices, standardize, take, train_val_split, CounterRng, PrepError};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The shared datasets: `$NNC_DATA`, else `../shared/data` next to the
/// worktree (where the repository layout puts them).
fn data_dir() -> PathBuf {
    match std::env::var_os("NNC_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

/// A fresh directory per test, removed on drop; tests run in parallel, so
/// the name carries the process id, the test's name and a counter.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("nnc-data-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn write_gz(&self, name: &str, bytes: &[u8]) -> PathBuf {
        self.write(name, &gzip(bytes))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// An unsigned-byte IDX file: magic `00 00 08 ndims`, big-endian dims, data.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// The error's message, after checking that its `Display` names the file:
/// a message without the path leaves a user with several data files guessing.
fn err_naming(result: Result<impl std::fmt::Debug, DataError>, path: &Path) -> String {
    let err = result.expect_err("bad input must be an error");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}: ", path.display())),
        "error does not name {path:?}: {shown}"
    );
    assert_eq!(err.path, path);
    err.message
}

fn class_counts(ds: &Dataset) -> Vec<usize> {
    ds.class_counts().expect("classification dataset")
}

fn arr(v: &[f32], shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// ---------------------------------------------------------------------------
// Real datasets
// ---------------------------------------------------------------------------

/// Class counts documented in shared/data/README.md.
const DIGITS_COUNTS: [usize; 10] = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180];
const MNIST_TRAIN_COUNTS: [usize; 10] = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
const MNIST_TEST_COUNTS: [usize; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

#[test]
fn digits_csv_shipped_copy_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/digits.csv");
    // The README promises the exact decompressed file; a changed size means
    // someone edited or re-exported it.
    assert_eq!(fs::metadata(&path).unwrap().len(), 264_712);
    let ds = load_csv(
        &path,
        &CsvOptions {
            label: LabelColumn::Index(64),
            ..CsvOptions::default()
        },
    )
    .unwrap();
    assert_eq!(ds.x.shape(), &[1797, 64]);
    assert_eq!(ds.y.shape(), &[1797]);
    assert!(ds.y_is_class);
    assert_eq!(ds.num_classes, Some(10));
    assert_eq!(class_counts(&ds), DIGITS_COUNTS);
    assert_eq!(ds.name, "digits");
    // Pixels are block counts 0..=16; anything else means a misparsed column.
    assert!(ds.x.iter().all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0));
    assert_eq!(ds.x.iter().fold(0f32, |m, &v| m.max(v)), 16.0);
    // First row of the file, spot-checked by hand.
    assert_eq!(ds.x[[0, 2]], 5.0);
    assert_eq!(ds.x[[0, 3]], 13.0);
    assert_eq!(ds.y[0], 0.0);
    assert_eq!(csv_feature_count(&path, &CsvOptions::default()).unwrap(), 64);
}

#[test]
fn digits_csv_gz_matches_shipped_copy_and_scales() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/digits.csv");
    let gz = data_dir().join("digits/digits.csv.gz");
    let opts = CsvOptions {
        scale: Some(1.0 / 16.0),
        ..CsvOptions::default()
    };
    let a = load_csv(&shipped, &opts).unwrap();
    let b = load_csv(&gz, &opts).unwrap();
    assert_eq!(a.x, b.x);
    assert_eq!(a.y, b.y);
    assert_eq!(b.name, "digits");
    // Scaling applies to features only, never to the label column.
    assert_eq!(a.x.iter().fold(0f32, |m, &v| m.max(v)), 1.0);
    assert_eq!(class_counts(&b), DIGITS_COUNTS);
    assert_eq!(csv_feature_count(&gz, &opts).unwrap(), 64);
}

#[test]
fn iris_metadata_header_is_skipped() {
    let path = data_dir().join("iris/iris.csv");
    let ds = load_csv(&path, &CsvOptions::default()).unwrap();
    assert_eq!(ds.x.shape(), &[150, 4]);
    assert_eq!(ds.num_classes, Some(3));
    assert_eq!(class_counts(&ds), [50, 50, 50]);
    // Documented feature means; they also prove no header value leaked in.
    let means = [5.843, 3.057, 3.758, 1.199];
    for (c, want) in means.iter().enumerate() {
        let got = ds.x.index_axis(ndarray::Axis(1), c).iter().map(|&v| f64::from(v)).sum::<f64>() / 150.0;
        assert!(close(got, *want, 5e-4), "feature {c}: mean {got}, want {want}");
    }
    assert_eq!(csv_feature_count(&path, &CsvOptions::default()).unwrap(), 4);
    // Without header detection the metadata line is data, and `setosa` is
    // the first non-number in it (line 1, third field).
    let msg = err_naming(
        load_csv(
            &path,
            &CsvOptions {
                header: Header::No,
                ..CsvOptions::default()
            },
        ),
        &path,
    );
    assert!(msg.contains("line 1, column 3"), "{msg}");
    assert!(msg.contains("setosa"), "{msg}");
}

#[test]
fn mnist_loads_with_documented_counts() {
    let dir = data_dir().join("mnist");
    // Header-only queries first: they must not need the whole file.
    assert_eq!(mnist_shape(&dir).unwrap(), [28, 28]);
    assert_eq!(idx_header(&dir.join("t10k-labels-idx1-ubyte.gz")).unwrap(), [10_000]);

    let (train, test) = load_mnist(&dir).unwrap();
    assert_eq!(train.x.shape(), &[60_000, 28, 28]);
    assert_eq!(test.x.shape(), &[10_000, 28, 28]);
    assert_eq!(train.y.shape(), &[60_000]);
    assert_eq!(test.y.shape(), &[10_000]);
    assert_eq!(train.num_classes, Some(10));
    assert_eq!(test.num_classes, Some(10));
    assert_eq!(class_counts(&train), MNIST_TRAIN_COUNTS);
    assert_eq!(class_counts(&test), MNIST_TEST_COUNTS);
    // Documented mean pixel on the 0–255 scale: checks scaling to [0, 1]
    // and that no header bytes were read as pixels.
    let mean_255 = |ds: &Dataset| ds.x.iter().map(|&v| f64::from(v)).sum::<f64>() / ds.x.len() as f64 * 255.0;
    assert!(close(mean_255(&train), 33.318, 1e-3), "train mean {}", mean_255(&train));
    assert!(close(mean_255(&test), 33.791, 1e-3), "test mean {}", mean_255(&test));
    assert!(train.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(test.flattened().x.shape(), &[10_000, 784]);
}

// ---------------------------------------------------------------------------
// IDX on generated files
// ---------------------------------------------------------------------------

#[test]
fn idx_pair_plain_and_gzip_load_and_scale() {
    let tmp = TempDir::new("idx-ok");
    let pixels: Vec<u8> = vec![0, 51, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    let img = idx_bytes(&[2, 2, 3], &pixels);
    let lab = idx_bytes(&[2], &[4, 1]);
    for (images, labels) in [
        (tmp.write("img", &img), tmp.write("lab", &lab)),
        (tmp.write_gz("img.gz", &img), tmp.write_gz("lab.gz", &lab)),
        // Compression is detected from content, not from the name.
        (tmp.write_gz("img-gz-no-suffix", &img), tmp.write("lab.plain", &lab)),
    ] {
        assert_eq!(idx_header(&images).unwrap(), [2, 2, 3]);
        assert_eq!(read_idx(&images).unwrap().shape(), &[2, 2, 3]);
        let ds = load_idx_pair(&images, &labels).unwrap();
        assert_eq!(ds.x.shape(), &[2, 2, 3]);
        assert_eq!(ds.x[[0, 0, 0]], 0.0);
        assert!(close(f64::from(ds.x[[0, 0, 1]]), 0.2, 1e-7));
        assert_eq!(ds.x[[0, 0, 2]], 1.0);
        assert_eq!(ds.y, arr(&[4.0, 1.0], &[2]));
        assert_eq!(ds.num_classes, Some(5));
        let flat = ds.flattened();
        assert_eq!(flat.x.shape(), &[2, 6]);
        assert!(close(f64::from(flat.x[[1, 5]]), 9.0 / 255.0, 1e-7));
    }
}

#[test]
fn idx_truncated_header_is_an_error() {
    let tmp = TempDir::new("idx-hdr");
    // Three dimensions need a 16-byte header; this one stops after 9.
    let path = tmp.write("short", &[0, 0, 8, 3, 0, 0, 0, 5, 0]);
    let msg = err_naming(read_idx(&path), &path);
    assert!(msg.contains("truncated IDX header"), "{msg}");
    let msg = err_naming(idx_header(&path), &path);
    assert!(msg.contains("truncated IDX header"), "{msg}");
    // Too short for the magic number itself, and through gzip.
    let path = tmp.write_gz("tiny.gz", &[0, 0]);
    let msg = err_naming(idx_header(&path), &path);
    assert!(msg.contains("truncated IDX header"), "{msg}");
    let path = tmp.write("empty", &[]);
    let msg = err_naming(read_idx(&path), &path);
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn idx_wrong_magic_is_an_error() {
    let tmp = TempDir::new("idx-magic");
    let path = tmp.write("csv-not-idx", b"1,2,3\n4,5,6\n");
    let msg = err_naming(read_idx(&path), &path);
    assert!(msg.contains("not an IDX file"), "{msg}");
    // A valid IDX header of 32-bit floats (type 0x0D): a real format, but
    // not one the loader reads.
    let mut float_idx = idx_bytes(&[1], &[0, 0, 0, 0]);
    float_idx[2] = 0x0d;
    let path = tmp.write("floats", &float_idx);
    let msg = err_naming(read_idx(&path), &path);
    assert!(msg.contains("unsupported IDX element type 0x0d"), "{msg}");
}

#[test]
fn idx_truncated_or_overlong_data_is_an_error() {
    let tmp = TempDir::new("idx-data");
    let full = idx_bytes(&[2, 3, 3], &[7; 18]);
    for path in [
        tmp.write("cut", &full[..full.len() - 1]),
        tmp.write_gz("cut.gz", &full[..full.len() - 1]),
    ] {
        let msg = err_naming(read_idx(&path), &path);
        assert!(msg.contains("truncated IDX data"), "{msg}");
        assert!(msg.contains("17"), "message should say how much was there: {msg}");
        // The header alone is intact, so the header query still succeeds.
        assert_eq!(idx_header(&path).unwrap(), [2, 3, 3]);
    }
    let mut long = full.clone();
    long.push(0);
    let path = tmp.write("long", &long);
    let msg = err_naming(read_idx(&path), &path);
    assert!(msg.contains("longer than its header"), "{msg}");
    // And the exact file is fine, so the two errors above are about length.
    assert_eq!(read_idx(&tmp.write("exact", &full)).unwrap().len(), 18);
}

#[test]
fn idx_header_reads_only_the_header_through_gzip() {
    let tmp = TempDir::new("idx-hdr-only");
    // 200 kB of noise compresses poorly, so cutting the gzip stream at 2 kB
    // leaves the header intact but loses almost all the data: a header query
    // that decompressed the whole file (instead of its first bytes) fails.
    let mut rng = CounterRng::new(1, 1);
    let noise: Vec<u8> = (0..200_000).map(|_| rng.next_u64() as u8).collect();
    let gz = gzip(&idx_bytes(&[2_000, 10, 10], &noise));
    let path = tmp.write("cut-stream.gz", &gz[..2_000]);
    assert_eq!(idx_header(&path).unwrap(), [2_000, 10, 10]);
    let msg = err_naming(read_idx(&path), &path);
    assert!(msg.contains("gzip") || msg.contains("truncated"), "{msg}");
}

#[test]
fn idx_image_label_count_mismatch_is_an_error() {
    let tmp = TempDir::new("idx-count");
    let images = tmp.write("img", &idx_bytes(&[3, 2, 2], &[0; 12]));
    let labels = tmp.write("lab", &idx_bytes(&[2], &[0, 1]));
    let msg = err_naming(load_idx_pair(&images, &labels), &labels);
    assert!(msg.contains("2 labels"), "{msg}");
    assert!(msg.contains("3 images"), "{msg}");
    assert!(msg.contains(&images.display().to_string()), "{msg}");
    // A label file must be one-dimensional.
    let labels2d = tmp.write("lab2d", &idx_bytes(&[3, 1], &[0, 1, 2]));
    let msg = err_naming(load_idx_pair(&images, &labels2d), &labels2d);
    assert!(msg.contains("1 dimension"), "{msg}");
}

#[test]
fn corrupt_gzip_is_an_error_not_a_panic() {
    let tmp = TempDir::new("gz-bad");
    let good = gzip(&idx_bytes(&[4], &[1, 2, 3, 4]));
    // Valid magic, then garbage: the decompressor must fail cleanly.
    let mut garbage = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    garbage.extend_from_slice(&[0xff; 32]);
    let path = tmp.write("garbage.gz", &garbage);
    let msg = err_naming(read_idx(&path), &path);
    assert!(msg.contains("gzip"), "{msg}");
    // A gzip stream cut in half.
    let path = tmp.write("half.gz", &good[..good.len() / 2]);
    err_naming(read_idx(&path), &path);
    let path = tmp.write("half-csv.gz", &good[..good.len() / 2]);
    err_naming(load_csv(&path, &CsvOptions::default()), &path);
}

#[test]
fn missing_files_are_named() {
    let tmp = TempDir::new("missing");
    let path = tmp.0.join("nope.csv");
    let msg = err_naming(load_csv(&path, &CsvOptions::default()), &path);
    assert!(msg.contains("not found"), "{msg}");
    let msg = err_naming(csv_feature_count(&path, &CsvOptions::default()), &path);
    assert!(msg.contains("not found"), "{msg}");
    let path = tmp.0.join("nope-idx");
    let msg = err_naming(read_idx(&path), &path);
    assert!(msg.contains("not found"), "{msg}");
    // MNIST: a directory holding only some of the four files names the first
    // missing one by its plain name.
    fs::write(tmp.0.join("train-images-idx3-ubyte"), idx_bytes(&[1, 1, 1], &[0])).unwrap();
    let missing = tmp.0.join("train-labels-idx1-ubyte");
    let msg = err_naming(load_mnist(&tmp.0), &missing);
    assert!(msg.contains("not found"), "{msg}");
    let no_dir = tmp.0.join("no-such-dir");
    err_naming(mnist_shape(&no_dir), &no_dir);
}

#[test]
fn mnist_directory_of_mixed_plain_and_gzip_files() {
    let tmp = TempDir::new("mnist-mini");
    tmp.write("train-images-idx3-ubyte", &idx_bytes(&[2, 2, 2], &[255; 8]));
    tmp.write_gz("train-labels-idx1-ubyte.gz", &idx_bytes(&[2], &[0, 1]));
    tmp.write_gz("t10k-images-idx3-ubyte.gz", &idx_bytes(&[1, 2, 2], &[0; 4]));
    tmp.write("t10k-labels-idx1-ubyte", &idx_bytes(&[1], &[2]));
    let (train, test) = load_mnist(&tmp.0).unwrap();
    assert_eq!(train.x.shape(), &[2, 2, 2]);
    assert_eq!(test.x.shape(), &[1, 2, 2]);
    // Train has labels 0..=1 and test 2: both must agree on 3 classes.
    assert_eq!(train.num_classes, Some(3));
    assert_eq!(test.num_classes, Some(3));
    assert_eq!(mnist_shape(&tmp.0).unwrap(), [2, 2]);
}

// ---------------------------------------------------------------------------
// CSV on generated files
// ---------------------------------------------------------------------------

#[test]
fn csv_non_numeric_field_names_line_and_column() {
    let tmp = TempDir::new("csv-nan");
    let path = tmp.write("bad.csv", b"1,2,0\n3,abc,1\n");
    let msg = err_naming(load_csv(&path, &CsvOptions::default()), &path);
    assert!(msg.contains("line 2, column 2"), "{msg}");
    assert!(msg.contains("abc"), "{msg}");
    // Non-finite values parse as floats but are rejected too.
    let path = tmp.write("inf.csv", b"1,2,0\n3,4,1\n5,inf,0\n");
    let msg = err_naming(load_csv(&path, &CsvOptions::default()), &path);
    assert!(msg.contains("line 3, column 2"), "{msg}");
    // A label that is not a class id.
    let path = tmp.write("label.csv", b"1,2,0\n3,4,2.5\n");
    let msg = err_naming(load_csv(&path, &CsvOptions::default()), &path);
    assert!(msg.contains("line 2, column 3"), "{msg}");
    let path = tmp.write("neg.csv", b"1,2,-1\n");
    let msg = err_naming(load_csv(&path, &CsvOptions::default()), &path);
    assert!(msg.contains("line 1, column 3"), "{msg}");
}

#[test]
fn csv_ragged_rows_are_an_error() {
    let tmp = TempDir::new("csv-ragged");
    let path = tmp.write("ragged.csv", b"1,2,0\n3,4,1\n5,1\n");
    let msg = err_naming(load_csv(&path, &CsvOptions::default()), &path);
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains("expected 3 fields"), "{msg}");
    assert!(msg.contains("found 2"), "{msg}");
}

#[test]
fn csv_empty_and_non_utf8_files_are_errors() {
    let tmp = TempDir::new("csv-empty");
    for (name, bytes) in [("empty.csv", &b""[..]), ("blank.csv", b"\n \n\r\n")] {
        let path = tmp.write(name, bytes);
        let msg = err_naming(load_csv(&path, &CsvOptions::default()), &path);
        assert!(msg.contains("no data rows"), "{msg}");
        err_naming(csv_feature_count(&path, &CsvOptions::default()), &path);
    }
    let path = tmp.write("only-header.csv", b"a,b,label\n");
    let msg = err_naming(load_csv(&path, &CsvOptions::default()), &path);
    assert!(msg.contains("no data rows"), "{msg}");
    let path = tmp.write("latin1.csv", b"1,2,0\n3,\xe9,1\n");
    let msg = err_naming(load_csv(&path, &CsvOptions::default()), &path);
    assert!(msg.contains("line 2"), "{msg}");
    assert!(msg.contains("UTF-8"), "{msg}");
}

#[test]
fn csv_header_modes_label_columns_and_crlf() {
    let tmp = TempDir::new("csv-opts");
    // Named header, label first, CRLF line endings, a BOM and a blank line.
    let path = tmp.write("named.csv", b"\xef\xbb\xbfkind,w,h\r\n1,0.5,2\r\n\r\n0,1.5,4\r\n");
    let by_name = CsvOptions {
        label: LabelColumn::Name("kind".into()),
        ..CsvOptions::default()
    };
    let ds = load_csv(&path, &by_name).unwrap();
    assert_eq!(ds.x, arr(&[0.5, 2.0, 1.5, 4.0], &[2, 2]));
    assert_eq!(ds.y, arr(&[1.0, 0.0], &[2]));
    assert_eq!(ds.num_classes, Some(2));
    let by_index = CsvOptions {
        label: LabelColumn::Index(-3),
        header: Header::Yes,
        scale: Some(2.0),
        regression: false,
    };
    let ds = load_csv(&path, &by_index).unwrap();
    assert_eq!(ds.x, arr(&[1.0, 4.0, 3.0, 8.0], &[2, 2]));
    assert_eq!(csv_feature_count(&path, &by_index).unwrap(), 2);

    let missing = CsvOptions {
        label: LabelColumn::Name("colour".into()),
        ..CsvOptions::default()
    };
    let msg = err_naming(load_csv(&path, &missing), &path);
    assert!(msg.contains("no column named `colour`"), "{msg}");
    let out_of_range = CsvOptions {
        label: LabelColumn::Index(3),
        ..CsvOptions::default()
    };
    let msg = err_naming(load_csv(&path, &out_of_range), &path);
    assert!(msg.contains("out of range"), "{msg}");

    // Numeric files: Auto sees no header, and a forced header drops a row.
    let path = tmp.write("numeric.csv", b"1,2,0\n3,4,1\n5,6,1\n");
    assert_eq!(load_csv(&path, &CsvOptions::default()).unwrap().len(), 3);
    let yes = CsvOptions {
        header: Header::Yes,
        ..CsvOptions::default()
    };
    assert_eq!(load_csv(&path, &yes).unwrap().len(), 2);
    let msg = err_naming(load_csv(&path, &by_name), &path);
    assert!(msg.contains("no header"), "{msg}");
    // A numeric first line with a different field count is metadata.
    let path = tmp.write("meta.csv", b"2,2\n1,2,0\n3,4,1\n");
    assert_eq!(
        load_csv(&path, &CsvOptions::default()).unwrap().x,
        arr(&[1.0, 2.0, 3.0, 4.0], &[2, 2])
    );
}

// ---------------------------------------------------------------------------
// Splitting and batching
// ---------------------------------------------------------------------------

fn toy_dataset(n: usize) -> Dataset {
    // Row i holds (i, 10 i) so a gathered row says where it came from.
    let x: Vec<f32> = (0..n).flat_map(|i| [i as f32, 10.0 * i as f32]).collect();
    let y: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
    Dataset {
        x: arr(&x, &[n, 2]),
        y: arr(&y, &[n]),
        y_is_class: true,
        num_classes: Some(3),
        name: "toy".into(),
    }
}

fn is_permutation(v: &[usize], n: usize) -> bool {
    let mut sorted = v.to_vec();
    sorted.sort_unstable();
    sorted == (0..n).collect::<Vec<_>>()
}

#[test]
fn shuffle_is_deterministic_per_seed_and_epoch() {
    let a = shuffle_indices(100, 42, 0);
    assert!(is_permutation(&a, 100));
    assert_eq!(a, shuffle_indices(100, 42, 0));
    assert_ne!(a, shuffle_indices(100, 42, 1), "another epoch must give another order");
    assert_ne!(a, shuffle_indices(100, 43, 0), "another seed must give another order");
    assert_ne!(a, (0..100).collect::<Vec<_>>(), "a shuffle must move something");
    assert!(shuffle_indices(0, 1, 0).is_empty());
    assert_eq!(shuffle_indices(1, 1, 0), [0]);
}

#[test]
fn rng_below_is_roughly_uniform_and_in_range() {
    // 30,000 draws over 3 buckets: each expects 10,000 with a standard
    // deviation of ~82, so ±500 fails only for a broken generator.
    let mut rng = CounterRng::new(7, 0);
    let mut buckets = [0usize; 3];
    for _ in 0..30_000 {
        buckets[rng.below(3) as usize] += 1;
    }
    assert!(buckets.iter().all(|&b| (9_500..=10_500).contains(&b)), "{buckets:?}");
    let mut rng = CounterRng::new(7, 0);
    assert!((0..1000).map(|_| rng.next_f32()).all(|v| (0.0..1.0).contains(&v)));
}

#[test]
fn train_val_split_partitions_deterministically() {
    let (train, val) = train_val_split(50, 0.2, 9);
    assert_eq!((train.len(), val.len()), (40, 10));
    let all: Vec<usize> = train.iter().chain(&val).copied().collect();
    assert!(is_permutation(&all, 50), "split must cover every row exactly once");
    assert_eq!((train.clone(), val.clone()), train_val_split(50, 0.2, 9));
    assert_ne!(val, train_val_split(50, 0.2, 10).1);
    // Not simply the last rows: the split is shuffled.
    assert_ne!(val, (40..50).collect::<Vec<_>>());
    assert!(train.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(train_val_split(7, 0.0, 1).1.len(), 0);
    assert_eq!(train_val_split(7, 1.0, 1).0.len(), 0);
}

#[test]
fn take_gathers_rows_in_order() {
    let ds = toy_dataset(6);
    let sub = take(&ds, &[4, 1, 4]);
    assert_eq!(sub.x, arr(&[4.0, 40.0, 1.0, 10.0, 4.0, 40.0], &[3, 2]));
    assert_eq!(sub.y, arr(&[1.0, 1.0, 1.0], &[3]));
    // The subset has only class 1 but keeps the full class count.
    assert_eq!(sub.num_classes, Some(3));
}

/// Every batch of a shuffled epoch arrives in order with the rows its
/// indices name, across the loader's hand-overs of several batches, and the
/// last batch holds the remainder.
#[test]
fn batches_cover_the_order_with_a_partial_last_batch() {
    let ds = toy_dataset(100);
    let order = shuffle_indices(100, 3, 0);
    let batches: Vec<&[usize]> = order.chunks(3).collect();
    let mut seen = vec![];
    let mut sizes = vec![];
    for_each_batch(&ds, &batches, |i, x, y| {
        assert_eq!(i, sizes.len());
        sizes.push(x.shape()[0]);
        assert_eq!(y.shape(), &[x.shape()[0]]);
        for (row, label) in x.outer_iter().zip(y.iter()) {
            assert_eq!(row[1], 10.0 * row[0]);
            assert_eq!(*label, ((row[0] as usize) % 3) as f32);
            seen.push(row[0] as usize);
        }
        Ok(Flow::Continue)
    })
    .unwrap();
    assert_eq!(sizes.len(), 34);
    assert!(sizes[..33].iter().all(|&s| s == 3) && sizes[33] == 1, "{sizes:?}");
    assert_eq!(seen, order);
    // `rows` gathers the same way, for evaluation batches.
    assert_eq!(rows(&ds.x, &[4, 1]), arr(&[4.0, 40.0, 1.0, 10.0], &[2, 2]));
}

/// Stopping early or failing mid-epoch ends the loader (no hang) and
/// reports the error.
#[test]
fn batches_stop_early_and_pass_errors_on() {
    let ds = toy_dataset(200);
    let order: Vec<usize> = (0..200).collect();
    let batches: Vec<&[usize]> = order.chunks(2).collect();
    let mut calls = 0;
    for_each_batch(&ds, &batches, |i, _, _| {
        calls += 1;
        Ok(if i == 20 { Flow::Stop } else { Flow::Continue })
    })
    .unwrap();
    assert_eq!(calls, 21);
    let err = for_each_batch(
        &ds,
        &batches,
        |i, _, _| if i == 40 { Err("boom".into()) } else { Ok(Flow::Continue) },
    );
    assert_eq!(err, Err("boom".to_string()));
    // No batches at all is a no-op.
    for_each_batch(&ds, &[], |_, _, _| panic!("no batch to see")).unwrap();
}

#[test]
fn standardize_uses_training_statistics() {
    // Feature 0: values 1, 3 → mean 2, std 1. Feature 1: constant 5.
    let mut train = Dataset {
        x: arr(&[1.0, 5.0, 3.0, 5.0], &[2, 2]),
        ..toy_dataset(2)
    };
    let mut test = Dataset {
        x: arr(&[4.0, 7.0], &[1, 2]),
        ..toy_dataset(1)
    };
    let st = standardize(&mut train, &mut [&mut test]).unwrap();
    assert_eq!(st.mean, [2.0, 5.0]);
    assert_eq!(st.std, [1.0, 1.0]);
    assert_eq!(train.x, arr(&[-1.0, 0.0, 1.0, 0.0], &[2, 2]));
    // Test data is shifted by the training mean, not its own.
    assert_eq!(test.x, arr(&[2.0, 2.0], &[1, 2]));

    let mut wide = Dataset {
        x: arr(&[1.0, 2.0, 3.0], &[1, 3]),
        ..toy_dataset(1)
    };
    let before = train.x.clone();
    let err = standardize(&mut train, &mut [&mut wide]).unwrap_err();
    assert_eq!(err, PrepError::FeatureMismatch { expected: 2, found: 3 });
    assert_eq!(train.x, before, "a failed standardize must not modify anything");
}

#[test]
fn one_hot_encodes_and_rejects_bad_labels() {
    let y = arr(&[2.0, 0.0, 1.0], &[3]);
    assert_eq!(one_hot(&y, 3).unwrap(), arr(&[0., 0., 1., 1., 0., 0., 0., 1., 0.], &[3, 3]));
    assert_eq!(
        one_hot(&y, 2).unwrap_err(),
        PrepError::LabelOutOfRange {
            index: 0,
            label: 2.0,
            classes: 2
        }
    );
    assert!(one_hot(&arr(&[0.5], &[1]), 2).is_err());
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// Three classes; true [0, 0, 1, 1, 2], predicted [0, 1, 1, 1, 0].
fn three_class_example() -> (ArrayD<f32>, ArrayD<f32>) {
    let scores = array![
        [0.9f32, 0.1, 0.0],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [-1.0, 3.0, 2.0],
        [5.0, 1.0, 4.0]
    ];
    (scores.into_dyn(), arr(&[0.0, 0.0, 1.0, 1.0, 2.0], &[5]))
}

#[test]
fn classification_metrics_match_hand_computation() {
    let (pred, labels) = three_class_example();
    assert!(close(metrics::accuracy(&pred, &labels).unwrap(), 0.6, 1e-12));
    let cm = metrics::confusion_matrix(&pred, &labels).unwrap();
    assert_eq!(cm.classes(), 3);
    let rows: Vec<Vec<u64>> = (0..3).map(|a| (0..3).map(|p| cm.count(a, p)).collect()).collect();
    assert_eq!(rows, [[1, 1, 0], [0, 2, 0], [1, 0, 0]]);
    // Precision 1/2, 2/3, 0 (class 2 never predicted); recall 1/2, 1, 0;
    // F1 1/2, 4/5, 0.
    let expect = [(0.5, 0.5, 0.5), (2.0 / 3.0, 1.0, 0.8), (0.0, 0.0, 0.0)];
    for (c, (p, r, f)) in expect.iter().enumerate() {
        assert!(close(cm.precision(c), *p, 1e-12), "precision {c}");
        assert!(close(cm.recall(c), *r, 1e-12), "recall {c}");
        assert!(close(cm.f1(c), *f, 1e-12), "f1 {c}");
    }
    let m = metrics::macro_scores(&pred, &labels).unwrap();
    assert!(close(m.precision, (0.5 + 2.0 / 3.0) / 3.0, 1e-12));
    assert!(close(m.recall, 0.5, 1e-12));
    assert!(close(m.f1, 1.3 / 3.0, 1e-12));
    // One-hot labels give the same answer as class ids.
    let onehot = one_hot(&labels, 3).unwrap();
    assert!(close(metrics::accuracy(&pred, &onehot).unwrap(), 0.6, 1e-12));
}

#[test]
fn binary_single_output_thresholds_at_half() {
    let labels = arr(&[1.0, 0.0, 0.0, 0.0], &[4]);
    // 0.5 itself counts as class 1.
    for shape in [&[4][..], &[4, 1][..]] {
        let probs = arr(&[0.9, 0.4, 0.5, 0.1], shape);
        assert!(close(metrics::accuracy(&probs, &labels).unwrap(), 0.75, 1e-12));
        let cm = metrics::confusion_matrix(&probs, &labels).unwrap();
        assert_eq!(cm.classes(), 2);
        assert_eq!((cm.count(0, 0), cm.count(0, 1), cm.count(1, 1), cm.count(1, 0)), (2, 1, 1, 0));
    }
}

#[test]
fn confusion_matrix_prints_an_aligned_table() {
    // Ten class-0 samples all right; five class-1 samples, two missed.
    let actual = [vec![0; 10], vec![1; 5]].concat();
    let predicted = [vec![0; 10], vec![0, 0, 1, 1, 1]].concat();
    let cm = ConfusionMatrix::from_classes(&predicted, &actual, 2).unwrap();
    let want = "true\\pred   0   1\n        0  10   0\n        1   2   3\n";
    assert_eq!(cm.to_string(), want);
    // All lines have the same width: the columns line up.
    let widths: Vec<usize> = cm.to_string().lines().map(str::len).collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{widths:?}");
}

#[test]
fn metric_errors_are_reported() {
    let (pred, labels) = three_class_example();
    assert!(matches!(
        metrics::accuracy(&pred, &arr(&[0.0; 4], &[4])),
        Err(MetricError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        metrics::accuracy(&pred, &arr(&[0.0, 1.5, 0.0, 0.0, 0.0], &[5])),
        Err(MetricError::BadLabel { index: 1, .. })
    ));
    assert!(matches!(
        metrics::accuracy(&arr(&[], &[3, 0]), &labels),
        Err(MetricError::BadPredictionShape(_))
    ));
    assert_eq!(metrics::accuracy(&arr(&[], &[0, 3]), &arr(&[], &[0])), Err(MetricError::Empty));
    assert!(matches!(
        ConfusionMatrix::from_classes(&[0, 3], &[0, 1], 3),
        Err(MetricError::ClassOutOfRange {
            index: 1,
            class: 3,
            classes: 3
        })
    ));
}

#[test]
fn regression_metrics_match_hand_computation() {
    let pred = arr(&[1.0, 2.0, 3.0, 4.0], &[4]);
    let target = arr(&[1.0, 3.0, 2.0, 6.0], &[4, 1]);
    // Errors 0, -1, 1, -2: MSE 6/4, MAE 4/4; target mean 3, SS_tot 14,
    // SS_res 6, R² = 1 - 6/14.
    assert!(close(metrics::mse(&pred, &target).unwrap(), 1.5, 1e-12));
    assert!(close(metrics::mae(&pred, &target).unwrap(), 1.0, 1e-12));
    assert!(close(metrics::r2(&pred, &target).unwrap(), 1.0 - 6.0 / 14.0, 1e-12));
    assert!(close(metrics::r2(&target, &target).unwrap(), 1.0, 1e-12));
    // Two outputs: column R² values 1 - 6/14 and 1 (exact) average.
    let pred2 = arr(&[1.0, 0.0, 2.0, 1.0, 3.0, 2.0, 4.0, 3.0], &[4, 2]);
    let target2 = arr(&[1.0, 0.0, 3.0, 1.0, 2.0, 2.0, 6.0, 3.0], &[4, 2]);
    assert!(close(metrics::r2(&pred2, &target2).unwrap(), (2.0 - 6.0 / 14.0) / 2.0, 1e-12));
    // A constant target scores 0 unless predicted exactly.
    let flat = arr(&[2.0, 2.0], &[2]);
    assert_eq!(metrics::r2(&arr(&[1.0, 2.0], &[2]), &flat).unwrap(), 0.0);
    assert!(matches!(
        metrics::mse(&pred, &arr(&[0.0; 3], &[3])),
        Err(MetricError::ShapeMismatch { .. })
    ));
    assert_eq!(metrics::mae(&arr(&[], &[0]), &arr(&[], &[0])), Err(MetricError::Empty));
}
