import Foundation
import TesseraData
import TesseraEngine

/// The overlay output as the last consumer: class tints and outlines (each object's own outline, in a colour of
/// its own, with `--instances`) over the input, rendered once, after the mask and the objects exist, for PNG and
/// TIFF alike. PNG outputs gather the image and labels while the chunks pass and take the objects' ids from
/// memory; TIFF outputs render window by window from the finished mask and label image (a pixel of margin each
/// side, so outlines at window edges are the whole image's) into a tiled TIFF, in bounded memory.
final class OverlayRenderer: ChunkConsumer {
    let url: URL
    let tiff: Bool
    let source: PixelSource
    let palette: [[Int]]
    let chunk: Int
    let maskURL: URL
    /// The objects whose outlines are drawn (nil: class outlines).
    let objects: InstanceConsumer?
    private var rgb: [UInt8] = [], labels: [UInt16] = []

    init(
        url: URL, tiff: Bool, source: PixelSource, palette: [[Int]], chunk: Int, maskURL: URL,
        objects: InstanceConsumer?
    )
        throws
    {
        self.url = url
        self.tiff = tiff
        self.source = source
        self.palette = palette
        self.chunk = chunk
        self.maskURL = maskURL
        self.objects = objects
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    }

    var needs: ChunkNeeds { tiff ? [] : .image }

    func consume(_ chunk: SegmentChunk) throws {
        guard !tiff, let image = chunk.image else { return }
        let w = source.width, window = chunk.window
        if labels.isEmpty {
            labels = [UInt16](repeating: 0, count: w * source.height)
            rgb = [UInt8](repeating: 0, count: w * source.height * 3)
        }
        let part = Overlay.rgb(of: image)
        for y in 0..<window.height {
            let row = (window.y + y) * w + window.x
            for x in 0..<window.width { labels[row + x] = chunk.labels[y * window.width + x] }
            for k in 0..<(window.width * 3) { rgb[row * 3 + k] = part[y * window.width * 3 + k] }
        }
    }

    func finish() throws {
        let w = source.width, h = source.height
        guard tiff else {
            let image = Image(width: w, height: h, channels: 3, samples: .uint8(rgb))
            try ImageCodec.write(
                Overlay.render(image: image, labels: labels, colors: palette, instances: objects?.lastIDs), to: url,
                quality: 90)
            return
        }
        let mask = try PixelSource(url: maskURL) { try ImageCodec.decode($0) }
        let ids = try objects.map { o in try PixelSource(url: o.url) { try ImageCodec.decode($0) } }
        let classes = MaskDecoder(kind: .label, classes: max(1, palette.count))
        try AtomicFile.write(to: url) { temporary in
            let writer = try TIFFWriter(
                url: temporary,
                bigTIFF: TIFFSegmentSink.needsBigTIFF(width: w, height: h, slices: source.slices, logits: false))
            let layout = TIFFSegmentSink.layout(width: w, height: h, channels: 3, bits: 8)
            for s in 0..<source.slices {
                try writer.beginPage(layout)
                for y0 in stride(from: 0, to: h, by: chunk) {
                    for x0 in stride(from: 0, to: w, by: chunk) {
                        let region = PixelWindow(x: x0, y: y0, width: min(chunk, w - x0), height: min(chunk, h - y0))
                        let ax = max(0, x0 - 1), ay = max(0, y0 - 1)
                        let around = PixelWindow(
                            x: ax, y: ay, width: min(w, region.x + region.width + 1) - ax,
                            height: min(h, region.y + region.height + 1) - ay)
                        let l = try classes.labels(from: try mask.window(around, slice: s), file: maskURL.path)
                        let o = try ids.map { page in
                            let image = try page.window(around, slice: s)
                            return (0..<(around.width * around.height)).map {
                                UInt32(clamping: image.sample(x: $0 % around.width, y: $0 / around.width, channel: 0))
                            }
                        }
                        try writer.writeTiles(
                            Overlay.render(
                                image: try source.window(region, slice: s), region: region,
                                labels: l.map { UInt16(clamping: $0) }, instances: o, around: around, colors: palette),
                            x: x0, y: y0)
                    }
                }
                try writer.endPage()
            }
            try writer.close()
        }
    }
}
