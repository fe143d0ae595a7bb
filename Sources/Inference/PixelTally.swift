import Foundation
import TesseraData
import TesseraEngine
import TesseraNN

/// The report's pixel numbers as a consumer of the chunks: pixels per predicted class and, against a truth mask of
/// class ids, the confusion matrix; both go on from a resumed image's saved progress.
final class PixelTally: ChunkConsumer {
    private(set) var pixels: [Int]
    private(set) var matrix: ConfusionMatrix?
    let truth: PixelSource?
    let decoder: MaskDecoder

    /// `matrix`: the confusion matrix to go on from, or nil for no pixel metrics.
    init(classes: Int, truth: PixelSource?, decoder: MaskDecoder, matrix: ConfusionMatrix?, resumed: SegmentProgress?) {
        pixels = resumed?.pixels ?? [Int](repeating: 0, count: classes)
        self.truth = truth
        self.decoder = decoder
        self.matrix = matrix
    }

    func consume(_ chunk: SegmentChunk) throws {
        for l in chunk.labels { pixels[Int(l)] += 1 }
        guard let truth, matrix != nil else { return }
        let w = chunk.window
        let ids = try decoder.labels(
            from: try truth.window(w, slice: chunk.slice), file: truth.file, origin: (w.x, w.y))
        matrix?.add(predictions: chunk.labels, truth: ids)
    }

    /// What a resumed run needs to go on from the end of chunk row `rows` of `slice`.
    func progress(key: String, slice: Int, rows: Int) -> SegmentProgress {
        SegmentProgress(key: key, slice: slice, rows: rows, pixels: pixels, confusion: matrix?.counts)
    }
}
