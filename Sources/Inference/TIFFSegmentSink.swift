import Foundation
import TesseraData
import TesseraEngine

/// How far a streamed image got, kept beside its partial outputs (`.<mask name>.progress`) after every chunk row,
/// so a killed run resumes from the last finished chunk row instead of the start.
struct SegmentProgress: Codable, Equatable {
    /// What the partial outputs were made from (model, settings, the input file's size and time); a progress
    /// file with another key is stale and ignored.
    var key: String
    /// The slice being written and its rows finished (a multiple of the chunk edge).
    var slice: Int
    var rows: Int
    /// Pixels per predicted class so far, and the confusion matrix against truth masks (when given).
    var pixels: [Int]
    var confusion: [Int]?
}

/// TIFF outputs written as chunks arrive: tiled (256 x 256), deflate-compressed, BigTIFF when the uncompressed
/// samples pass 2 GiB; one page per slice. The mask is 8-bit (16-bit past 256 classes), colour masks and overlays
/// 8-bit RGB, probabilities 16-bit (x 65535) and logits 32-bit float, one page per class (and slice, class-major).
/// Each file is written under a partial name and renamed when the image is done; after every chunk row the files
/// are checkpointed and the progress recorded.
final class TIFFSegmentSink: SegmentSink {
    /// One file being written.
    struct Part {
        /// The file's final name; nil for one class's pages, which are gathered into the output at the end.
        let final: URL?
        let partial: URL
        let layout: TIFFLayout
        let description: String?
    }

    let targets: SegmentTargets
    let classes: Int, slices: Int
    let palette: [[Int]]
    let big: Bool
    let progressFile: URL
    private(set) var resumed: SegmentProgress?
    private var mask: (Part, TIFFWriter)?
    private var color: (Part, TIFFWriter)?
    private var prob: [(Part, TIFFWriter)] = []
    private var logits: [(Part, TIFFWriter)] = []
    private var all: [(Part, TIFFWriter)] { [mask, color].compactMap { $0 } + prob + logits }

    static let tile = 256

    /// The layout of every streamed output page: 256-pixel tiles, deflate, the predictor for 16-bit samples.
    static func layout(width: Int, height: Int, channels: Int, bits: Int) -> TIFFLayout {
        var l = TIFFLayout(width: width, height: height, channels: channels, bitDepth: bits)
        l.tile = tile
        l.compression = .deflate
        l.predictor = bits == 16
        return l
    }

    /// Whether an image's pages of 8-bit RGB (or, with logits, 32-bit floats) pass classic TIFF's 4 GiB.
    static func needsBigTIFF(width: Int, height: Int, slices: Int, logits: Bool) -> Bool {
        TIFFLayout(width: width, height: height * slices, channels: 3, bitDepth: 8).needsBigTIFF
            || (logits && TIFFLayout(width: width, height: height * slices, channels: 1, bitDepth: 32).needsBigTIFF)
    }

    init(
        targets: SegmentTargets, width: Int, height: Int, slices: Int, classes: Int, classNames: [String],
        palette: [[Int]], key: String
    ) throws {
        self.targets = targets
        self.classes = classes
        self.slices = slices
        self.palette = palette
        progressFile = Self.hidden(targets.mask, "progress")
        func layout(_ channels: Int, _ bits: Int) -> TIFFLayout {
            Self.layout(width: width, height: height, channels: channels, bits: bits)
        }
        let o = targets.outputs
        big = Self.needsBigTIFF(width: width, height: height, slices: slices, logits: o.contains(.logits))
        var parts: [(SegmentOutput, Part)] = []
        /// One file of `kind` (`final` set) or, for per-class pages, one file per class gathered at the end.
        func add(_ kind: SegmentOutput, _ url: URL, channels: Int, bits: Int, perClass description: String? = nil) {
            guard o.contains(kind) else { return }
            guard let description else {
                let part = Part(
                    final: url, partial: Self.hidden(url, "partial"), layout: layout(channels, bits), description: nil)
                return parts.append((kind, part))
            }
            for (c, name) in classNames.enumerated() {
                let part = Part(
                    final: nil, partial: Self.hidden(url, "class\(c).partial"), layout: layout(channels, bits),
                    description: "\(description) \(name)")
                parts.append((kind, part))
            }
        }
        add(.mask, targets.mask, channels: 1, bits: classes <= 256 ? 8 : 16)
        add(.color, targets.color, channels: 3, bits: 8)
        if let url = targets.prob.first {
            add(.prob, url, channels: 1, bits: 16, perClass: "probability x 65535 of class")
        }
        add(.logits, targets.logits, channels: 1, bits: 32, perClass: "logits of class")
        for (_, part) in parts {
            try FileManager.default.createDirectory(
                at: part.partial.deletingLastPathComponent(), withIntermediateDirectories: true)
        }
        let (writers, saved) =
            try Self.resume(parts.map(\.1), progressFile: progressFile, key: key, classes: classes)
            ?? Self.start(parts.map(\.1), big: big, progressFile: progressFile)
        resumed = saved
        for ((kind, part), writer) in zip(parts, writers) {
            switch kind {
            case .mask: mask = (part, writer)
            case .color: color = (part, writer)
            case .overlay: break
            case .prob: prob.append((part, writer))
            case .logits: logits.append((part, writer))
            }
        }
    }

    /// `.<name>.<suffix>` beside `url`: partial outputs and the progress file (hidden, and never named like the
    /// temporary files a batch run removes).
    static func hidden(_ url: URL, _ suffix: String) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(suffix)")
    }

    private static func start(_ parts: [Part], big: Bool, progressFile: URL) throws -> ([TIFFWriter], SegmentProgress?)
    {
        try? FileManager.default.removeItem(at: progressFile)
        let writers = try parts.map { part -> TIFFWriter in
            let w = try TIFFWriter(url: part.partial, bigTIFF: big)
            try w.beginPage(part.layout, description: part.description)
            return w
        }
        return (writers, nil)
    }

    /// Writers reopened where the progress file says, or nil when there is nothing (valid) to resume.
    private static func resume(_ parts: [Part], progressFile: URL, key: String, classes: Int) -> (
        [TIFFWriter], SegmentProgress?
    )? {
        guard let data = try? Data(contentsOf: progressFile),
            let saved = try? JSONDecoder().decode(SegmentProgress.self, from: data), saved.key == key,
            saved.slice >= 0, saved.rows >= 0, saved.pixels.count == classes,
            parts.allSatisfy({ FileManager.default.fileExists(atPath: $0.partial.path) })
        else { return nil }
        do {
            let writers = try parts.map {
                try TIFFWriter(resuming: $0.partial, layout: $0.layout, pagesDone: saved.slice, rowsDone: saved.rows)
            }
            return (writers, saved)
        } catch {
            return nil  // a partial file that cannot be resumed: start over
        }
    }

    var needs: ChunkNeeds { prob.isEmpty ? [] : .probability }

    func consume(_ chunk: SegmentChunk) throws {
        let w = chunk.window, m = w.width * w.height
        if let (_, writer) = mask {
            let samples: Image.Samples = classes <= 256 ? .uint8(chunk.labels.map { UInt8($0) }) : .uint16(chunk.labels)
            try writer.writeTiles(
                Image(width: w.width, height: w.height, channels: 1, samples: samples), x: w.x, y: w.y)
        }
        if let (_, writer) = color {
            var rgb = [UInt8](repeating: 255, count: m * 3)
            for (i, l) in chunk.labels.enumerated() where Int(l) < palette.count {
                for k in 0..<3 { rgb[i * 3 + k] = UInt8(clamping: palette[Int(l)][k]) }
            }
            try writer.writeTiles(
                Image(width: w.width, height: w.height, channels: 3, samples: .uint8(rgb)), x: w.x, y: w.y)
        }
        for (c, (_, writer)) in prob.enumerated() {
            try writer.writeTiles(
                Image(width: w.width, height: w.height, channels: 1, samples: .uint16(chunk.probability[c])), x: w.x,
                y: w.y)
        }
        for (c, (_, writer)) in logits.enumerated() {
            let plane = Array(chunk.logits[(c * m)..<((c + 1) * m)])
            try writer.writeTiles(
                Image(width: w.width, height: w.height, channels: 1, samples: .float32(plane)), x: w.x, y: w.y)
        }
    }

    func finishedChunkRow(_ progress: SegmentProgress) throws {
        for (_, writer) in all { try writer.checkpoint() }
        try AtomicFile.write(try JSONEncoder().encode(progress), to: progressFile)
    }

    func finishSlice(_ slice: Int) throws {
        for (part, writer) in all {
            try writer.endPage()
            if slice + 1 < slices {
                try writer.beginPage(part.layout, description: part.description)
                try writer.checkpoint()  // the next page's directory exists, so progress may point at it
            }
        }
    }

    func finish() throws {
        for (_, writer) in all { try writer.close() }
        for (part, _) in all { if let final = part.final { try AtomicFile.commit(part.partial, to: final) } }
        for (parts, final) in [(prob.map(\.0), targets.prob.first), (logits.map(\.0), targets.logits)] {
            guard let final, !parts.isEmpty else { continue }
            try AtomicFile.write(to: final) { temporary in
                let writer = try TIFFWriter(url: temporary, bigTIFF: big)
                for part in parts { try writer.appendPages(of: part.partial) }
                try writer.close()
            }
            for part in parts { try? FileManager.default.removeItem(at: part.partial) }
        }
        try? FileManager.default.removeItem(at: progressFile)
    }

    func discard() {
        for (part, writer) in all {
            try? writer.close()
            try? FileManager.default.removeItem(at: part.partial)
        }
        try? FileManager.default.removeItem(at: progressFile)
    }
}
