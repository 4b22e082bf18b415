//! The JSON router's fast path in WebAssembly (built by tools/wasm/build.sh into
//! src/codec/json-wasm-bytes.ts; loaded by src/codec/json-wasm.ts).
//!
//! For each record of a batch it does what JsonExtractor.extract does for the common record, a
//! flat object whose values are plain ASCII strings, numbers or literals, with its key, time and
//! id fields at the top level: validate it, find the fields, write the canonical key text and the
//! id after it, read the time. Anything else (escapes, bytes >= 0x7f, nested values, a byte order
//! mark, fields missing or not in their plain form, invalid JSON) is declined, and the JavaScript
//! extractor takes the record as before: this code only ever accepts what it would accept, with
//! the same result (test/unit/json-wasm.test.ts compares the two).
#![no_std]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

const MAX_NAMES: usize = 16;
const MAX_NAME: usize = 64;
static mut NAME_LEN: [u8; MAX_NAMES] = [0; MAX_NAMES];
static mut NAMES: [[u8; MAX_NAME]; MAX_NAMES] = [[0; MAX_NAME]; MAX_NAMES];
static mut N_NAMES: usize = 0;

static mut N_KEYS: usize = 0;
/// The wanted name of each (length, first byte): its index + 1 (0: none); names sharing both are
/// chained through NEXT. One load per member name instead of a loop over the wanted names.
static mut LOOKUP: [u8; (MAX_NAME + 1) * 256] = [0; (MAX_NAME + 1) * 256];
static mut NEXT: [u8; MAX_NAMES] = [0; MAX_NAMES];
static mut TY: [u8; MAX_NAMES] = [0; MAX_NAMES];
static mut VS: [usize; MAX_NAMES] = [0; MAX_NAMES];
static mut VE: [usize; MAX_NAMES] = [0; MAX_NAMES];

/// Scratch for the configuration blob the host writes before configure().
static mut CONFIG: [u8; 1 + MAX_NAMES * (1 + MAX_NAME)] = [0; 1 + MAX_NAMES * (1 + MAX_NAME)];

/// Where the host writes the configuration: [count][len, bytes]… (keys first, then time, then id).
#[no_mangle]
pub extern "C" fn config_ptr() -> *mut u8 {
    core::ptr::addr_of_mut!(CONFIG) as *mut u8
}

/// Reads the configuration; false when it does not fit (the host then keeps to JavaScript).
#[no_mangle]
pub extern "C" fn configure(n_keys: u32) -> u32 {
    unsafe {
        let c = &*core::ptr::addr_of!(CONFIG);
        let n = c[0] as usize;
        if n > MAX_NAMES || n != n_keys as usize + 2 {
            return 0;
        }
        (*core::ptr::addr_of_mut!(LOOKUP)).fill(0);
        let mut p = 1;
        for i in 0..n {
            let len = c[p] as usize;
            if len > MAX_NAME {
                return 0;
            }
            NAME_LEN[i] = len as u8;
            NAMES[i][..len].copy_from_slice(&c[p + 1..p + 1 + len]);
            if len == 0 {
                return 0; // (an empty name: the JavaScript extractor takes such records)
            }
            let slot = len * 256 + c[p + 1] as usize;
            NEXT[i] = LOOKUP[slot];
            LOOKUP[slot] = (i + 1) as u8;
            p += 1 + len;
        }
        N_NAMES = n;
        N_KEYS = n_keys as usize;
    }
    1
}

/// src[s, e) into dst at o; returns the end. Values are short: a byte loop kept from becoming a
/// memory.copy call (V8 makes each a call into the runtime, which cost more than the bytes).
#[inline(always)]
fn copy_short(dst: &mut [u8], o: usize, src: &[u8], s: usize, e: usize) -> usize {
    let n = e - s;
    let d = &mut dst[o..o + n];
    let sr = &src[s..e];
    let mut i = 0;
    while i < n {
        unsafe { core::ptr::write_volatile(d.as_mut_ptr().add(i), *sr.get_unchecked(i)) };
        i += 1;
    }
    o + n
}

/// Past one or more digits from p (a fraction's or an exponent's), or None when there is none.
#[inline(always)]
fn digits(b: &[u8], mut p: usize, last: usize) -> Option<usize> {
    let f = p;
    while p < last && b[p].is_ascii_digit() {
        p += 1;
    }
    if p == f { None } else { Some(p) }
}

#[inline(always)]
fn ws(c: u8) -> bool {
    c == b' ' || c == b'\n' || c == b'\r' || c == b'\t'
}

const T_STRING: u8 = 1;
const T_INT: u8 = 2; // an integer without fraction or exponent
const T_OTHER: u8 = 3; // a number with fraction or exponent, or a literal

/// A plain string's closing quote from p (after the opening one), or None.
#[inline(always)]
fn string_end(b: &[u8], mut p: usize, last: usize) -> Option<usize> {
    while p < last {
        let c = unsafe { *b.get_unchecked(p) };
        if c == b'"' {
            return Some(p);
        }
        if c < 0x20 || c >= 0x7f || c == b'\\' {
            return None;
        }
        p += 1;
    }
    None
}

/// Extracts the records of a batch. `data` holds the batch's bytes, `offs` its count + 1 record
/// offsets (record i is data[offs[i] + skip, offs[i + 1])), `lines`: NDJSON lines (trailing blanks
/// trimmed, as the router does). For each record, 16 bytes at `out` + 16 i: the time (f64), the
/// offset of its key and id text in `keys` (u32; 0xffffffff: declined), the key's and the id's
/// length (u16 each). Returns the number of records taken.
#[no_mangle]
pub extern "C" fn extract_batch(data: *const u8, data_len: u32, offs: *const u32, count: u32, skip: u32, lines: u32,
    out: *mut u8, keys: *mut u8, keys_cap: u32) -> u32 {
    let b = unsafe { core::slice::from_raw_parts(data, data_len as usize) };
    let offs = unsafe { core::slice::from_raw_parts(offs, count as usize + 1) };
    let out = unsafe { core::slice::from_raw_parts_mut(out, count as usize * 16) };
    let keys = unsafe { core::slice::from_raw_parts_mut(keys, keys_cap as usize) };
    let mut k = 0usize;
    let mut taken = 0u32;
    for i in 0..count as usize {
        let o = i * 16;
        let start = offs[i] as usize + skip as usize;
        let mut end = offs[i + 1] as usize;
        out[o + 8..o + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        if start > end || end > b.len() {
            continue;
        }
        if lines != 0 {
            while end > start && ws(b[end - 1]) {
                end -= 1;
            }
        }
        if let Some((ts, kl, il)) = record(b, start, end, &mut keys[k..]) {
            out[o..o + 8].copy_from_slice(&ts.to_le_bytes());
            out[o + 8..o + 12].copy_from_slice(&(k as u32).to_le_bytes());
            out[o + 12..o + 14].copy_from_slice(&(kl as u16).to_le_bytes());
            out[o + 14..o + 16].copy_from_slice(&(il as u16).to_le_bytes());
            k += kl + il;
            taken += 1;
        }
    }
    taken
}

/// One record: (time, key length, id length) with the key and id text written to `kbuf`, or None.
fn record(b: &[u8], start: usize, end0: usize, kbuf: &mut [u8]) -> Option<(f64, usize, usize)> {
    let (n_names, n_keys) = unsafe { (N_NAMES, N_KEYS) };
    // Per wanted field: its value's type and bounds, valid where `seen` has its bit. Statics, not
    // locals: zeroing arrays on the stack per record was a memory.fill call each (V8 runs it in its
    // runtime), a third of the time of a record.
    let ty = unsafe { &mut *core::ptr::addr_of_mut!(TY) };
    let vs = unsafe { &mut *core::ptr::addr_of_mut!(VS) };
    let ve = unsafe { &mut *core::ptr::addr_of_mut!(VE) };
    let mut seen: u32 = 0;
    let mut end = end0;
    while end > start && ws(b[end - 1]) {
        end -= 1;
    }
    if end - start < 2 || b[start] != b'{' || b[end - 1] != b'}' {
        return None;
    }
    let last = end - 1;
    let mut p = start + 1;
    while p < last && ws(b[p]) {
        p += 1;
    }
    if p == last {
        return None; // {}: no fields
    }
    loop {
        if b[p] != b'"' {
            return None;
        }
        let ks = p + 1;
        let ke = string_end(b, ks, last)?;
        let len = ke - ks;
        // wanted names by length and first byte (LOOKUP), then the rest
        let mut m = usize::MAX;
        if len >= 1 && len <= MAX_NAME {
            let mut c = unsafe { LOOKUP[len * 256 + *b.get_unchecked(ks) as usize] };
            while c != 0 {
                let j = c as usize - 1;
                let nm = unsafe { &*core::ptr::addr_of!(NAMES[j]) };
                let mut k = 1;
                while k < len && nm[k] == unsafe { *b.get_unchecked(ks + k) } {
                    k += 1;
                }
                if k == len {
                    m = j;
                    break;
                }
                c = unsafe { NEXT[j] };
            }
        }
        p = ke + 1;
        while p < last && ws(b[p]) {
            p += 1;
        }
        if p >= last || b[p] != b':' {
            return None;
        }
        p += 1;
        while p < last && ws(b[p]) {
            p += 1;
        }
        if p >= last {
            return None;
        }
        let v0 = p;
        let c = b[p];
        let t;
        if c == b'"' {
            p = string_end(b, p + 1, last)? + 1;
            t = T_STRING;
        } else if c == b'-' || c.is_ascii_digit() {
            if c == b'-' {
                p += 1;
            }
            if p >= last {
                return None;
            }
            let d = b[p];
            if d == b'0' {
                p += 1;
            } else if d >= b'1' && d <= b'9' {
                p += 1;
                while p < last && b[p].is_ascii_digit() {
                    p += 1;
                }
            } else {
                return None;
            }
            let mut plain = true;
            if p < last && b[p] == b'.' {
                plain = false;
                p = digits(b, p + 1, last)?;
            }
            if p < last && (b[p] == b'e' || b[p] == b'E') {
                plain = false;
                p += 1;
                if p < last && (b[p] == b'+' || b[p] == b'-') {
                    p += 1;
                }
                p = digits(b, p, last)?;
            }
            t = if plain { T_INT } else { T_OTHER };
        } else if b[p..last].starts_with(b"true") {
            p += 4;
            t = T_OTHER;
        } else if b[p..last].starts_with(b"false") {
            p += 5;
            t = T_OTHER;
        } else if b[p..last].starts_with(b"null") {
            p += 4;
            t = T_OTHER;
        } else {
            return None; // an object, an array, or not JSON
        }
        if m != usize::MAX {
            seen |= 1 << m;
            ty[m] = t;
            vs[m] = v0;
            ve[m] = p;
        }
        while p < last && ws(b[p]) {
            p += 1;
        }
        if p == last {
            break;
        }
        if b[p] != b',' {
            return None;
        }
        p += 1;
        while p < last && ws(b[p]) {
            p += 1;
        }
        if p >= last || b[p] != b'"' {
            return None;
        }
    }
    if seen != (1u32 << n_names) - 1 {
        return None; // a field is missing
    }
    // Key text [k1,k2,…] then the id: plain strings and non-negative integers of at most 21
    // characters are their own canonical text (JsonExtractor.scalar's common case).
    #[inline(always)]
    fn plain_scalar(t: u8, s: usize, e: usize, b: &[u8]) -> bool {
        t == T_STRING || (t == T_INT && e - s <= 21 && b[s] != b'-')
    }
    let id = n_keys + 1;
    let mut need = 2 + n_keys.saturating_sub(1);
    for j in 0..n_keys {
        if !plain_scalar(ty[j], vs[j], ve[j], b) {
            return None;
        }
        need += ve[j] - vs[j];
    }
    if !plain_scalar(ty[id], vs[id], ve[id], b) {
        return None;
    }
    need += ve[id] - vs[id];
    if need > kbuf.len() || need > 4096 {
        return None;
    }

    // The time: an integer of at most 15 characters, read in two halves as the extractor does.
    let tt = n_keys;
    if ty[tt] != T_INT || ve[tt] - vs[tt] > 15 {
        return None;
    }
    let (s, e) = (vs[tt], ve[tt]);
    let neg = b[s] == b'-';
    let q = if neg { s + 1 } else { s };
    let mid = if e >= 8 && e - 8 > q { e - 8 } else { q };
    let mut hi: i32 = 0;
    let mut lo: i32 = 0;
    for x in q..mid {
        hi = hi.wrapping_mul(10).wrapping_add((unsafe { *b.get_unchecked(x) } - b'0') as i32);
    }
    for x in mid..e {
        lo = lo.wrapping_mul(10).wrapping_add((unsafe { *b.get_unchecked(x) } - b'0') as i32);
    }
    let v = hi as f64 * 1e8 + lo as f64;
    let ts = if neg { -v } else { v };
    let mut o = 0;
    kbuf[o] = b'[';
    o += 1;
    for j in 0..n_keys {
        if j > 0 {
            kbuf[o] = b',';
            o += 1;
        }
        o = copy_short(kbuf, o, b, vs[j], ve[j]);
    }
    kbuf[o] = b']';
    o += 1;
    let kl = o;
    let end_o = copy_short(kbuf, o, b, vs[id], ve[id]);
    Some((ts, kl, end_o - kl))
}
