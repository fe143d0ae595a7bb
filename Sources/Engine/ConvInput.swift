/// Where the planes of a convolution's input live: one [N, C, spatial] buffer, or the channel concatenation of
/// several without the copy (U-Net's decoder reads its up-sampled map and its skip in place: at W=64 and 512x512
/// the concatenation was a 128 MB tensor written and read once per level-0 decoder step).
struct ConvInput {
    /// Contiguous [N, channels, plane] buffers, joined along channels.
    let parts: [(base: UnsafePointer<Float>, channels: Int)]
    /// Floats per (image, channel) plane.
    let plane: Int

    init(_ base: UnsafePointer<Float>, channels: Int, plane: Int) {
        parts = [(base, channels)]
        self.plane = plane
    }

    init(parts: [(base: UnsafePointer<Float>, channels: Int)], plane: Int) {
        self.parts = parts
        self.plane = plane
    }

    var channels: Int { parts.reduce(0) { $0 + $1.channels } }

    /// Plane of channel `c` (of all the parts' channels) of image `n`.
    func plane(image n: Int, channel c: Int) -> UnsafePointer<Float> {
        var c = c
        for part in parts {
            if c < part.channels { return part.base + (n * part.channels + c) * plane }
            c -= part.channels
        }
        preconditionFailure("channel out of range")
    }

    /// Channels `range` of image `n` as runs of consecutive planes: (first plane, count, offset in `range`).
    func runs(image n: Int, channels range: Range<Int>) -> [(planes: UnsafePointer<Float>, count: Int, offset: Int)] {
        var out: [(UnsafePointer<Float>, Int, Int)] = []
        var start = 0
        for part in parts {
            let lo = max(range.lowerBound, start), hi = min(range.upperBound, start + part.channels)
            if lo < hi {
                out.append((part.base + (n * part.channels + lo - start) * plane, hi - lo, lo - range.lowerBound))
            }
            start += part.channels
        }
        return out
    }
}
