//! The protobuf wire format, as much of it as ONNX files need: varints,
//! length-delimited fields (strings, bytes, nested messages) and packed
//! repeated integers and floats.
//!
//! ONNX is a handful of messages; writing them by hand here keeps the build
//! free of a protobuf code generator (and of `protoc`), and each field
//! number is spelled out once, next to its name, in `onnx.rs`.

/// One message being written. Fields are appended in the order called;
/// protobuf readers accept any order.
#[derive(Default)]
pub struct Message {
    buf: Vec<u8>,
}

/// Wire types of the protobuf encoding.
const VARINT: u64 = 0;
const FIXED32: u64 = 5;
const LEN: u64 = 2;

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Message {
    pub fn new() -> Message {
        Message::default()
    }
    fn key(&mut self, field: u32, wire: u64) {
        varint(&mut self.buf, (u64::from(field) << 3) | wire);
    }
    /// An `int64`/`int32`/enum field. Negative values take ten bytes, as
    /// protobuf's two's-complement varint encoding requires.
    pub fn int(&mut self, field: u32, v: i64) -> &mut Message {
        self.key(field, VARINT);
        varint(&mut self.buf, v as u64);
        self
    }
    pub fn float(&mut self, field: u32, v: f32) -> &mut Message {
        self.key(field, FIXED32);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Message {
        self.key(field, LEN);
        varint(&mut self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }
    pub fn string(&mut self, field: u32, v: &str) -> &mut Message {
        self.bytes(field, v.as_bytes())
    }
    pub fn message(&mut self, field: u32, m: &Message) -> &mut Message {
        self.bytes(field, &m.buf)
    }
    /// A packed `repeated int64` field.
    pub fn ints(&mut self, field: u32, vs: &[i64]) -> &mut Message {
        let mut packed = vec![];
        for &v in vs {
            varint(&mut packed, v as u64);
        }
        self.bytes(field, &packed)
    }
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}
