import Foundation
import TesseraData
import TesseraEngine
import TesseraExplain
import TesseraInference
import XCTest

/// Attribution over tiles: where one tile covers the image the map is the whole-image map; over many tiles it
/// follows the whole-image map with no step at the tiles' seams.
final class TiledCAMTests: XCTestCase {
    func map(
        _ method: CAMMethod, tile: Int, model: ExplainModel, planes: [Float], width: Int, height: Int,
        region: TiledCAM.Region = .predicted
    ) throws -> [Float] {
        let network = try XCTUnwrap(model.segmenter)
        let cam = GradCAM(method: method, layer: model.defaultLayer, patch: 32, stride: 16)
        let tiled = try TiledCAM(
            cam: cam, tiling: TiledInference(tile: tile, overlap: 0.5), network: network, width: width,
            height: height, channels: 1, classIndex: 1, region: region)
        let read: (PixelWindow) -> [Float] = { w in
            MirrorWindowTestRead.crop(planes, width: width, height: height, w)
        }
        let totals = try tiled.totals(network: network, read: read)
        var out = [Float](repeating: 0, count: width * height)
        try tiled.map(network: network, totals: totals, chunk: 256, read: read) { w, values in
            for y in 0..<w.height {
                for x in 0..<w.width { out[(w.y + y) * width + w.x + x] = values[y * w.width + x] }
            }
        }
        let lo = out.min() ?? 0, hi = out.max() ?? 0
        return out.map { ($0 - lo) / (hi - lo + 1e-7) }
    }

    func whole(_ method: CAMMethod, model: ExplainModel, planes: [Float], width: Int, height: Int) throws -> [Float] {
        let network = try XCTUnwrap(model.segmenter)
        let (input, py, px) = TiledInference.wholeImageWindow(
            planes, width: width, height: height, channels: 1, model: network)
        let crop = PixelWindow(x: -px.inputStart[0], y: -py.inputStart[0], width: width, height: height)
        let predicted = withNoGrad { network(input) }.argmax(axis: 1).scalars
        let oh = py.outputSize, ow = px.outputSize, oy0 = py.outputStart(0), ox0 = px.outputStart(0)
        var region = [Float](repeating: 0, count: oh * ow)
        for oy in 0..<oh where (0..<height).contains(oy + oy0) {
            for ox in 0..<ow where (0..<width).contains(ox + ox0) && predicted[oy * ow + ox] == 1 {
                region[oy * ow + ox] = 1
            }
        }
        return try GradCAM(method: method, layer: model.defaultLayer, patch: 32, stride: 16).explain(
            model: network, input: input, target: .region(class: 1, region: region), crop: crop
        ).heatmap
    }

    func testOneTileGivesTheWholeImageMapAndTilesLeaveNoSeams() throws {
        let checkpoint = try ISBICheckpoint.trained.get()
        let model = try ExplainModel.load(checkpoint, mean: nil, std: nil)
        let image = try ImageCodec.decode(
            ISBICheckpoint.folder.appendingPathComponent("images/slice05.png"),
            options: {
                var o = ImageCodec.Options(); o.gray = true; return o
            }())
        let crop = image.cropped(x: 0, y: 0, width: 200, height: 176)
        let planes = ModelInput.planes(of: crop, mean: model.mean, std: model.std)
        for method in TiledCAM.methods {
            let w = try whole(method, model: model, planes: planes, width: 200, height: 176)
            let t = try map(method, tile: 4096, model: model, planes: planes, width: 200, height: 176)
            let worst = zip(w, t).map { abs($0 - $1) }.max() ?? 0
            print("tiled \(method.rawValue), one tile: largest difference from the whole-image map \(worst)")
            XCTAssertLessThan(worst, 1e-5, method.rawValue)
        }
        // Many tiles (64-pixel tiles, 32-pixel steps, over 512 x 512): the map against the whole-image one, and the
        // step between neighbouring pixels on the tiles' output edges against the same step elsewhere.
        let full = ModelInput.planes(of: image, mean: model.mean, std: model.std)
        for method in [CAMMethod.gradcam, .layercam] {
            let w = try whole(method, model: model, planes: full, width: 512, height: 512)
            let t = try map(method, tile: 64, model: model, planes: full, width: 512, height: 512)
            let meanW = w.reduce(0, +) / Float(w.count), meanT = t.reduce(0, +) / Float(t.count)
            var sxy: Float = 0, sxx: Float = 0, syy: Float = 0
            for i in w.indices {
                sxy += (w[i] - meanW) * (t[i] - meanT)
                sxx += (w[i] - meanW) * (w[i] - meanW)
                syy += (t[i] - meanT) * (t[i] - meanT)
            }
            let correlation = sxy / (sxx * syy).squareRoot()
            func steps(_ m: [Float], onEdges: Bool) -> Float {
                var s: Float = 0, n: Float = 0
                for y in 0..<512 {
                    for x in 1..<512 where (x % 32 == 0) == onEdges {
                        s += abs(m[y * 512 + x] - m[y * 512 + x - 1])
                        n += 1
                    }
                }
                return s / n
            }
            let seam = steps(t, onEdges: true), elsewhere = steps(t, onEdges: false)
            print(
                "tiled \(method.rawValue), 64-px tiles: correlation with the whole-image map \(correlation); "
                    + "mean step on tile edges \(seam), elsewhere \(elsewhere); whole-image map \(steps(w, onEdges: true)) / \(steps(w, onEdges: false))"
            )
            XCTAssertGreaterThan(correlation, 0.9, method.rawValue)
            // The whole-image map has the same ratio of steps at those columns (1.10 for Grad-CAM, 1.05 for
            // Layer-CAM); a seam would add to it.
            let baseline = steps(w, onEdges: true) / steps(w, onEdges: false)
            XCTAssertLessThan(seam / elsewhere, baseline + 0.05, "\(method.rawValue): a step at the tiles' seams")
        }
    }
}

extension TiledCAMTests {
    /// `explain --tile`: tiled TIFF outputs, the raw map equal to the whole-image run's where one tile covers the
    /// image, and a run over many tiles that follows it.
    func testTiledExplainWritesTIFFsEqualToTheWholeImageRun() throws {
        let checkpoint = try ISBICheckpoint.trained.get()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-tiled-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let image = try ImageCodec.decode(ISBICheckpoint.folder.appendingPathComponent("images/slice05.png"))
        let input = root.appendingPathComponent("part.png")
        try ImageCodec.write(image.cropped(x: 40, y: 60, width: 300, height: 260), to: input)
        func run(_ tile: Int?) throws -> [Float] {
            var o = ExplainOptions()
            o.targetClass = "1"
            o.tile = tile
            o.outputs = tile == nil ? [.raw] : [.raw, .heatmap, .overlay]
            o.rawFormat = .npy
            let run = try ExplainRun(model: checkpoint, options: o, out: root.appendingPathComponent("out\(tile ?? 0)"))
            run.console = .quiet
            let record = try XCTUnwrap(run.run(inputs: [input.path]).records.first)
            XCTAssertEqual(record.status, .done, record.error ?? "")
            let url = run.outputURL(.raw, relative: "part.png")
            if tile == nil {
                let data = try Data(contentsOf: url)
                return data.suffix(300 * 260 * 4).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            }
            XCTAssertEqual(url.pathExtension, "tif")
            for kind in [ExplainOutput.heatmap, .overlay] {
                let info = try ImageCodec.info(of: run.outputURL(kind, relative: "part.png"))
                XCTAssertEqual([info.width, info.height, info.channels], [300, 260, 3])
            }
            let raw = try TIFFFile(url: url).window(PixelWindow(x: 0, y: 0, width: 300, height: 260), page: 0)
            guard case .float32(let values) = raw.samples else {
                XCTFail("raw map is not float32")
                return []
            }
            return values
        }
        let whole = try run(nil), one = try run(4096), many = try run(64)
        XCTAssertLessThan(zip(whole, one).map { abs($0 - $1) }.max() ?? 1, 1e-5)
        let mean = many.reduce(0, +) / Float(many.count), wm = whole.reduce(0, +) / Float(whole.count)
        var sxy: Float = 0, sxx: Float = 0, syy: Float = 0
        for i in whole.indices {
            sxy += (whole[i] - wm) * (many[i] - mean)
            sxx += (whole[i] - wm) * (whole[i] - wm)
            syy += (many[i] - mean) * (many[i] - mean)
        }
        XCTAssertGreaterThan(sxy / (sxx * syy).squareRoot(), 0.9)
    }
}

/// A window of planar one-channel planes (the test's `read`).
enum MirrorWindowTestRead {
    static func crop(_ planes: [Float], width: Int, height: Int, _ w: PixelWindow) -> [Float] {
        var out = [Float](repeating: 0, count: w.width * w.height)
        for y in 0..<w.height { for x in 0..<w.width { out[y * w.width + x] = planes[(w.y + y) * width + w.x + x] } }
        return out
    }
}
