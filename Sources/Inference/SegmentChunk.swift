import Foundation
import TesseraData
import TesseraEngine

/// One finished chunk of one slice of an image's segmentation, as every consumer takes it: made once per chunk
/// from the blended logits (`TiledInference` is the splitter and the network), then handed to each consumer in
/// turn.
struct SegmentChunk {
    let window: PixelWindow
    let slice: Int
    /// Predicted class per pixel of the window, row-major.
    let labels: [UInt16]
    /// Probability x 65535 per class (when a consumer needs it), each row-major over the window.
    let probability: [[UInt16]]
    /// Logits [classes][h][w] of the window.
    let logits: UnsafeBufferPointer<Float>
    /// The window's input pixels (when a consumer needs them).
    let image: Image?
}

/// What a consumer needs in each chunk beyond the labels and logits.
struct ChunkNeeds: OptionSet {
    let rawValue: Int
    static let probability = ChunkNeeds(rawValue: 1)
    static let image = ChunkNeeds(rawValue: 2)
}

/// A consumer of an image's finished chunks (MONAI's merger role): one output file, the object labeller, the
/// overlay, the pixel tally. A new output or per-chunk analysis is a new consumer, not a new branch in the loop.
/// Calls come in this order: `consume` for every chunk (raster order of the chunk grid, slice by slice),
/// `finishedChunkRow` after each complete chunk row, `finishSlice` after each slice, then `finish` (consumers in
/// the order they were given: outputs first, objects after them, the overlay last), or `discard` when the image
/// failed.
protocol ChunkConsumer: AnyObject {
    var needs: ChunkNeeds { get }
    func consume(_ chunk: SegmentChunk) throws
    /// Every chunk above `progress.rows` of slice `progress.slice` is consumed: make it durable and resumable.
    func finishedChunkRow(_ progress: SegmentProgress) throws
    func finishSlice(_ slice: Int) throws
    func finish() throws
    func discard()
}

extension ChunkConsumer {
    var needs: ChunkNeeds { [] }
    func finishedChunkRow(_ progress: SegmentProgress) throws {}
    func finishSlice(_ slice: Int) throws {}
    func finish() throws {}
    func discard() {}
}

/// The one softmax of segmentation: class per pixel (the first of equal maxima, as argmax) and the probabilities
/// x 65535 rounded to the 16-bit samples the `prob` output stores; every consumer of probabilities (the output,
/// the watershed, `eval`'s objects) reads these same values, so streamed, whole-image and evaluated objects agree.
enum ClassProbabilities {
    /// Labels and, when `probability`, the quantised probabilities of logits [classes][pixels].
    static func labels(_ logits: UnsafeBufferPointer<Float>, classes: Int, pixels m: Int, probability wanted: Bool)
        -> (labels: [UInt16], probability: [[UInt16]])
    {
        var labels = [UInt16](repeating: 0, count: m)
        var prob = wanted ? [[UInt16]](repeating: [UInt16](repeating: 0, count: m), count: classes) : []
        var scores = [Float](repeating: 0, count: classes)
        for i in 0..<m {
            var best = 0
            for c in 0..<classes {
                scores[c] = logits[c * m + i]
                if scores[c] > scores[best] { best = c }
            }
            labels[i] = UInt16(best)
            if wanted {
                var total: Float = 0
                for c in 0..<classes {
                    scores[c] = Foundation.exp(scores[c] - logits[best * m + i])
                    total += scores[c]
                }
                for c in 0..<classes { prob[c][i] = UInt16((scores[c] / total * 65535).rounded()) }
            }
        }
        return (labels, prob)
    }

    /// A quantised probability plane as fractions in [0, 1].
    static func fractions(_ plane: [UInt16]) -> [Float] { plane.map { Float($0) / 65535 } }
}
