import Foundation
import TesseraData
import TesseraEngine
import TesseraInference

/// `explain --tile`: a segmenter's map over tiles (`TiledCAM`), streamed to tiled TIFFs in bounded memory. The map
/// leaves the second pass into a float TIFF beside the outputs (hidden, removed at the end) while its range is
/// measured; a third pass scales it to [0, 1] and writes the raw map, the heatmap and the overlay chunk by chunk.
extension ExplainRun {
    /// Chunk edge of the streamed passes (a multiple of the TIFF tile, 256).
    static let tileChunk = 1024

    /// Explains one image read window by window.
    func explainTiled(_ source: PixelSource, relative: String) throws -> ExplainRecord {
        guard let network = model.segmenter, let tile = options.tile else {
            throw FileError(file: relative, reason: "--tile explains segmentation models only")
        }
        let w = source.width, h = source.height, channels = model.inChannels
        var record = ExplainRecord(path: relative, status: .done)
        (record.width, record.height) = (w, h)
        record.layer = options.method.usesLayer ? cam.layer : nil
        // Without --class: the first class after background (finding the most predicted one would take a pass).
        let classIndex = try options.targetClass.map(model.classIndex) ?? (model.classes > 1 ? 1 : 0)
        record.classIndex = classIndex
        record.className = model.classNames[classIndex]
        let region: TiledCAM.Region
        if let b = options.box {
            guard b.x + b.width <= w, b.y + b.height <= h else {
                throw FileError(
                    file: relative,
                    reason: "the box \(b.x),\(b.y),\(b.width),\(b.height) reaches outside the \(w)x\(h) image")
            }
            region = .box(b)
        } else {
            region = .predicted
        }
        let mean = model.mean, std = model.std
        let read: (PixelWindow) throws -> [Float] = { window in
            ModelInput.planes(
                of: try source.window(window).converted(toChannels: channels, file: source.file), mean: mean, std: std)
        }
        let started = Date()
        let tiled = try TiledCAM(
            cam: cam, tiling: TiledInference(tile: tile, overlap: options.overlap), network: network, width: w,
            height: h, channels: channels, classIndex: classIndex, region: region)
        let totals = try tiled.totals(network: network, read: read)
        record.score = totals.score
        record.regionPixels = Int(totals.regionPixels.rounded())
        // The unscaled map, and its range and peak, from the second pass.
        let mapFile = outputURL(.raw, relative: relative).deletingLastPathComponent()
            .appendingPathComponent(".\((relative as NSString).lastPathComponent).map.partial")
        try FileManager.default.createDirectory(
            at: mapFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: mapFile) }
        var lo = Float.infinity, hi = -Float.infinity, peak = (x: 0.0, y: 0.0, n: 0.0)
        let floatLayout = Self.tiffLayout(width: w, height: h, channels: 1, bits: 32)
        let writer = try TIFFWriter(url: mapFile, bigTIFF: floatLayout.needsBigTIFF)
        try writer.beginPage(floatLayout)
        try tiled.map(network: network, totals: totals, chunk: Self.tileChunk, read: read) { window, values in
            for y in 0..<window.height {
                for x in 0..<window.width {
                    let v = values[y * window.width + x]
                    lo = min(lo, v)
                    if v > hi + 1e-6 {
                        hi = v
                        peak = (0, 0, 0)
                    }
                    hi = max(hi, v)
                    if v >= hi - 1e-6 {
                        peak.x += Double(window.x + x)
                        peak.y += Double(window.y + y)
                        peak.n += 1
                    }
                }
            }
            try writer.writeTiles(
                Image(width: window.width, height: window.height, channels: 1, samples: .float32(Array(values))),
                x: window.x, y: window.y)
        }
        try writer.endPage()
        try writer.close()
        record.mapSeconds = Date().timeIntervalSince(started)
        record.zeroMap = !(hi > 0)
        (record.peakX, record.peakY) = hi > 0 && peak.n > 0 ? (peak.x / peak.n, peak.y / peak.n) : (-1, -1)
        if record.zeroMap {
            console.logger.warning(
                "\(relative): the \(options.method.rawValue) map of class \(classIndex) is zero everywhere; its heatmap is all zeros"
            )
        }
        try writeTiled(map: mapFile, range: (lo, hi), source: source, relative: relative)
        return record
    }

    /// The third pass: the map scaled as the whole-image heatmap is ((v - min) / (max - min), zero if the map is),
    /// written to the requested outputs, each a tiled TIFF under a temporary name renamed when complete.
    func writeTiled(map: URL, range: (lo: Float, hi: Float), source: PixelSource, relative: String) throws {
        let w = source.width, h = source.height
        let kinds = options.outputs.sorted { $0.rawValue < $1.rawValue }
        var writers: [(ExplainOutput, TIFFWriter, URL, URL)] = []
        for kind in kinds {
            let url = outputURL(kind, relative: relative)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let temporary = url.deletingLastPathComponent().appendingPathComponent(
                AtomicFile.temporaryName(for: url.lastPathComponent))
            let layout = Self.tiffLayout(
                width: w, height: h, channels: kind == .raw ? 1 : 3, bits: kind == .raw ? 32 : 8)
            let writer = try TIFFWriter(url: temporary, bigTIFF: layout.needsBigTIFF)
            try writer.beginPage(layout)
            writers.append((kind, writer, temporary, url))
        }
        defer { for (_, _, temporary, _) in writers { try? FileManager.default.removeItem(at: temporary) } }
        let file = try TIFFFile(url: map)
        let scale = range.hi > 0 && range.hi.isFinite ? 1 / (range.hi - range.lo + 1e-7) : 0
        for y0 in stride(from: 0, to: h, by: Self.tileChunk) {
            for x0 in stride(from: 0, to: w, by: Self.tileChunk) {
                let window = PixelWindow(
                    x: x0, y: y0, width: min(Self.tileChunk, w - x0), height: min(Self.tileChunk, h - y0))
                guard case .float32(let values) = try file.window(window, page: 0).samples else {
                    throw FileError(file: map.path, reason: "the map's pixels are not float32")
                }
                let heat = values.map { scale > 0 ? ($0 - range.lo) * scale : 0 }
                for (kind, writer, _, _) in writers {
                    let image: Image
                    switch kind {
                    case .raw:
                        image = Image(width: window.width, height: window.height, channels: 1, samples: .float32(heat))
                    case .heatmap: image = options.colormap.render(heat, width: window.width, height: window.height)
                    case .overlay:
                        image = Overlay.heatmap(
                            heat, over: try source.window(window), colormap: options.colormap, alpha: options.alpha)
                    }
                    try writer.writeTiles(image, x: x0, y: y0)
                }
            }
        }
        for (_, writer, temporary, url) in writers {
            try writer.endPage()
            try writer.close()
            try AtomicFile.commit(temporary, to: url)
        }
    }

    /// A tiled (256), deflate-compressed page.
    static func tiffLayout(width: Int, height: Int, channels: Int, bits: Int) -> TIFFLayout {
        var l = TIFFLayout(width: width, height: height, channels: channels, bitDepth: bits)
        l.tile = 256
        l.compression = .deflate
        l.predictor = false
        return l
    }
}
