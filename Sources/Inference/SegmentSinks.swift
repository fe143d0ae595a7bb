import Foundation
import TesseraData
import TesseraEngine

/// The files of an image's mask, colour mask, probabilities and logits, written as chunks arrive (TIFF) or whole
/// at the end (PNG): one type per file format. The overlay is its own consumer (`OverlayRenderer`), rendered last.
protocol SegmentSink: ChunkConsumer {
    /// Where a resumed image goes on from (nil: from the start).
    var resumed: SegmentProgress? { get }
}

/// The files of each requested output of one image.
struct SegmentTargets {
    /// The outputs the sink writes (never the overlay).
    var outputs: Set<SegmentOutput>
    var mask: URL, color: URL, logits: URL
    /// One file per class (PNG) or one multi-page file (TIFF, `prob[0]`).
    var prob: [URL]
}

/// PNG outputs (and JPEG overlays): each output is gathered over the whole image and encoded at the end, as PNG
/// and JPEG encoders need whole images; memory is checked against `ModelInput.memoryBudget` before the first
/// chunk.
final class WholeImageSink: SegmentSink {
    let targets: SegmentTargets
    let width: Int, height: Int, classes: Int
    let palette: [[Int]]
    var labels: [UInt16]
    var prob: [[UInt16]]
    var logits: [Float]
    var resumed: SegmentProgress? { nil }

    /// `overlay`: the overlay is asked for too (its consumer keeps 5 bytes a pixel, counted in the budget here).
    init(
        targets: SegmentTargets, width: Int, height: Int, slices: Int, classes: Int, palette: [[Int]], file: String,
        overlay: Bool
    ) throws {
        guard slices == 1 else {
            throw FileError(
                file: file, reason: "\(slices) slices do not fit one PNG per output: use --output-format tiff")
        }
        let o = targets.outputs
        let perPixel =
            2 + (o.contains(.prob) ? 2 * classes : 0) + (o.contains(.logits) ? 4 * classes : 0)
            + (o.contains(.color) ? 1 : 0) + (overlay ? 5 : 0)
        let (bytes, overflow) = (width * height).multipliedReportingOverflow(by: perPixel)
        guard !overflow, bytes <= ModelInput.memoryBudget else {
            throw FileError(
                file: file,
                reason: "PNG outputs of a \(width)x\(height) image need the whole image in memory (over the "
                    + "\(ModelInput.memoryBudget >> 30) GiB budget): use --output-format tiff, which streams")
        }
        self.targets = targets
        self.width = width
        self.height = height
        self.classes = classes
        self.palette = palette
        let n = width * height
        labels = [UInt16](repeating: 0, count: n)
        prob = o.contains(.prob) ? [[UInt16]](repeating: [UInt16](repeating: 0, count: n), count: classes) : []
        logits = o.contains(.logits) ? [Float](repeating: 0, count: classes * n) : []
    }

    var needs: ChunkNeeds { targets.outputs.contains(.prob) ? .probability : [] }

    func consume(_ chunk: SegmentChunk) throws {
        let w = chunk.window, m = w.width * w.height, n = width * height
        for y in 0..<w.height {
            let to = (w.y + y) * width + w.x, from = y * w.width
            for x in 0..<w.width { labels[to + x] = chunk.labels[from + x] }
            for c in prob.indices { for x in 0..<w.width { prob[c][to + x] = chunk.probability[c][from + x] } }
            if !logits.isEmpty {
                for c in 0..<classes {
                    for x in 0..<w.width { logits[c * n + to + x] = chunk.logits[c * m + from + x] }
                }
            }
        }
    }

    func finish() throws {
        let w = width, h = height
        func ensureFolder(_ url: URL) throws {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        }
        for kind in targets.outputs.sorted(by: { $0.rawValue < $1.rawValue }) {
            switch kind {
            case .mask:
                try ensureFolder(targets.mask)
                let samples: Image.Samples = classes <= 256 ? .uint8(labels.map { UInt8($0) }) : .uint16(labels)
                try ImageCodec.write(Image(width: w, height: h, channels: 1, samples: samples), to: targets.mask)
            case .color:
                try ensureFolder(targets.color)
                let colors = palette.prefix(256).map { $0.map { UInt8(clamping: $0) } }
                try ImageCodec.write(
                    Image(width: w, height: h, channels: 1, samples: .uint8(labels.map { UInt8(min($0, 255)) })),
                    to: targets.color, palette: Array(colors))
            case .overlay: continue  // the overlay's own consumer
            case .prob:
                for (c, url) in targets.prob.enumerated() where c < prob.count {
                    try ensureFolder(url)
                    try ImageCodec.write(Image(width: w, height: h, channels: 1, samples: .uint16(prob[c])), to: url)
                }
            case .logits:
                try ensureFolder(targets.logits)
                try SafeTensorsFile.write(
                    [("logits", Tensor(logits, shape: [classes, h, w]))], to: targets.logits)
            }
        }
    }
}
