import Foundation
import TesseraEngine
import TesseraNN

/// A network mapping images [N, C, H, W] to per-pixel logits [N, classes, H', W'].
public protocol SegmentationNetwork: Module {
    var inChannels: Int { get }
    var classes: Int { get }
    /// The output height (or width) for an input of `size`, or nil when the network cannot take that size
    /// (not a multiple of its down-sampling, or too small for valid convolutions).
    func outputSize(forInput size: Int) -> Int?
}

extension SegmentationNetwork {
    /// The smallest input size at or above `size` the network takes whose output is at least `size` (a valid
    /// U-Net's output is smaller than its input: the image is mirrored outward by the difference).
    public func inputSize(covering size: Int) -> Int {
        var s = max(1, size)
        while true {
            if let o = outputSize(forInput: s), o >= size { return s }
            s += 1
        }
    }

    /// The smallest input size at or above `size` the network takes.
    public func validInputSize(atLeast size: Int) -> Int {
        var s = max(1, size)
        while outputSize(forInput: s) == nil { s += 1 }
        return s
    }

    /// Nearest input sizes the network takes, below and above `size` (for error messages).
    public func validInputSizes(near size: Int) -> (below: Int?, above: Int) {
        var below: Int? = nil
        var s = size - 1
        while s > 0 {
            if outputSize(forInput: s) != nil { below = s; break }
            s -= 1
        }
        return (below, validInputSize(atLeast: size + 1))
    }
}
