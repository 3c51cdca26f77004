//! A minimal reader of the kernel's BTF (`/sys/kernel/btf/vmlinux`): just enough to find the
//! byte offset of a `task_struct` member and the arity of a raw tracepoint.
//!
//! The kernel programs are compiled without `task_struct`'s layout, which changes between
//! kernels and configurations. The loader asks this module for the offsets of the fields the
//! programs read and passes them in as globals: the same idea as CO-RE relocations, done in
//! userspace. Pure: it parses bytes, so tests feed it hand-built blobs.

use thiserror::Error;

const BTF_MAGIC: u16 = 0xEB9F;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

/// What went wrong reading BTF.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BtfError {
    /// The blob is not BTF or is cut short.
    #[error("malformed BTF: {what}")]
    Malformed {
        /// What was wrong.
        what: &'static str,
    },
    /// No complete struct of that name.
    #[error("struct `{name}` not found in the kernel's BTF")]
    NoStruct {
        /// The struct looked for.
        name: String,
    },
    /// The struct exists but has no such member.
    #[error(
        "member `{member}` of `{strukt}` not found in the kernel's BTF (kernel too old or too new?)"
    )]
    NoMember {
        /// The struct.
        strukt: String,
        /// The member looked for.
        member: String,
    },
    /// The member is a bitfield or not byte aligned.
    #[error("member `{member}` is not byte aligned")]
    NotByteAligned {
        /// The member.
        member: String,
    },
    /// No typedef of that name leading to a function prototype.
    #[error("raw tracepoint type `{name}` not found in the kernel's BTF")]
    NoTracepoint {
        /// The typedef looked for.
        name: String,
    },
}

struct Member {
    name_off: u32,
    type_id: u32,
    bit_offset: u32,
}

struct Type {
    name_off: u32,
    kind: u32,
    /// Size, or referenced type id, depending on kind.
    size_or_type: u32,
    members: Vec<Member>,
    vlen: u32,
}

/// Parsed BTF: the types (id 1 is index 0) and the string section.
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, BtfError> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or(BtfError::Malformed { what: "truncated" })
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BtfError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(BtfError::Malformed { what: "truncated" })
}

impl Btf {
    /// Parses a little-endian BTF blob.
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        if u16_at(data, 0)? != BTF_MAGIC {
            return Err(BtfError::Malformed { what: "bad magic" });
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let type_off = u32_at(data, 8)? as usize;
        let type_len = u32_at(data, 12)? as usize;
        let str_off = u32_at(data, 16)? as usize;
        let str_len = u32_at(data, 20)? as usize;
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off);
            start
                .and_then(|s| data.get(s..s.checked_add(len)?))
                .ok_or(BtfError::Malformed {
                    what: "section out of bounds",
                })
        };
        let type_sec = section(type_off, type_len)?;
        let strings = section(str_off, str_len)?.to_vec();
        let mut types = Vec::new();
        let mut at = 0;
        while at < type_sec.len() {
            let name_off = u32_at(type_sec, at)?;
            let info = u32_at(type_sec, at + 4)?;
            let size_or_type = u32_at(type_sec, at + 8)?;
            at += 12;
            let vlen = info & 0xffff;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen as usize {
                        let m = at + i * 12;
                        let raw = u32_at(type_sec, m + 8)?;
                        members.push(Member {
                            name_off: u32_at(type_sec, m)?,
                            type_id: u32_at(type_sec, m + 4)?,
                            bit_offset: if kind_flag { raw & 0x00ff_ffff } else { raw },
                        });
                    }
                    vlen as usize * 12
                }
                KIND_ENUM | KIND_FUNC_PROTO => vlen as usize * 8,
                KIND_DATASEC | KIND_ENUM64 => vlen as usize * 12,
                0..=19 => 0,
                _ => {
                    return Err(BtfError::Malformed {
                        what: "unknown kind",
                    });
                }
            };
            at += extra;
            types.push(Type {
                name_off,
                kind,
                size_or_type,
                members,
                vlen,
            });
        }
        Ok(Btf { types, strings })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    fn by_id(&self, id: u32) -> Option<&Type> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    /// Byte offset of `member` in `struct strukt`, looking through anonymous structs and unions.
    pub fn member_offset(&self, strukt: &str, member: &str) -> Result<u32, BtfError> {
        let ty = self
            .types
            .iter()
            .find(|t| {
                t.kind == KIND_STRUCT && t.vlen > 0 && self.name(t.name_off) == strukt.as_bytes()
            })
            .ok_or_else(|| BtfError::NoStruct {
                name: strukt.to_owned(),
            })?;
        let bits =
            self.find_member(ty, member.as_bytes(), 0)
                .ok_or_else(|| BtfError::NoMember {
                    strukt: strukt.to_owned(),
                    member: member.to_owned(),
                })?;
        if bits % 8 != 0 {
            return Err(BtfError::NotByteAligned {
                member: member.to_owned(),
            });
        }
        Ok(bits / 8)
    }

    fn find_member(&self, ty: &Type, member: &[u8], base_bits: u32) -> Option<u32> {
        for m in &ty.members {
            if m.name_off != 0 && self.name(m.name_off) == member {
                return Some(base_bits + m.bit_offset);
            }
        }
        // Anonymous struct/union members: search inside them, depth-first.
        for m in ty.members.iter().filter(|m| m.name_off == 0) {
            let inner = self.by_id(m.type_id)?;
            if matches!(inner.kind, KIND_STRUCT | KIND_UNION)
                && let Some(found) = self.find_member(inner, member, base_bits + m.bit_offset)
            {
                return Some(found);
            }
        }
        None
    }

    /// Number of arguments of raw tracepoint `tp` as the kernel passes them to BPF (the
    /// `btf_trace_<tp>` typedef's prototype, minus its leading `void *data`).
    pub fn raw_tracepoint_arity(&self, tp: &str) -> Result<u32, BtfError> {
        let name = format!("btf_trace_{tp}");
        let not_found = || BtfError::NoTracepoint { name: name.clone() };
        let typedef = self
            .types
            .iter()
            .find(|t| t.kind == KIND_TYPEDEF && self.name(t.name_off) == name.as_bytes())
            .ok_or_else(not_found)?;
        let ptr = self.by_id(typedef.size_or_type).ok_or_else(not_found)?;
        if ptr.kind != KIND_PTR {
            return Err(not_found());
        }
        let proto = self.by_id(ptr.size_or_type).ok_or_else(not_found)?;
        if proto.kind != KIND_FUNC_PROTO || proto.vlen == 0 {
            return Err(not_found());
        }
        Ok(proto.vlen - 1)
    }
}

#[cfg(test)]
#[path = "btf_tests.rs"]
mod tests;
