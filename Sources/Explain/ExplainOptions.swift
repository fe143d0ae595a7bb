import Foundation
import TesseraData
import TesseraInference
import TesseraSettings

/// The file format of raw attribution maps (`--raw-format`, `raw_format`): 16-bit PNG or float32 `.npy`.
public enum CAMMapFormat: String, Codable, CaseIterable, Sendable {
    case png, npy
}

/// What `tessera explain` writes per image, under `OUT/heatmap/`, `OUT/overlay/` and `OUT/raw/` with the input's
/// relative path.
public enum ExplainOutput: String, Codable, CaseIterable, Sendable {
    /// The heatmap in colour (PNG).
    case heatmap
    /// The heatmap blended over the image (PNG or JPEG).
    case overlay
    /// The heatmap's values in [0, 1]: a 16-bit PNG (value x 65535) or float32 `.npy`.
    case raw
}

/// Settings of an explain run. Each is declared once, with its range, in `ExplainOptions.table`.
public struct ExplainOptions: Sendable, BatchPolicy {
    public var method = CAMMethod.gradcam
    /// Dotted module path; nil: the model's last convolutional stage.
    public var layer: String?
    /// Class index or name; nil: a classifier's top-1 class, a segmenter's most predicted non-background class.
    public var targetClass: String?
    /// A mask (nonzero = region) for segmentation targets: one file for every input, or a folder holding one per
    /// input at the same relative path. Nil: the pixels predicted as the class.
    public var targetMask: URL?
    /// A box (image pixels) for segmentation targets.
    public var box: PixelWindow?
    /// One object as the target region: its pixels in `targetMask` (an `instances/` label image of `segment
    /// --instances`), or without one, object `object` among the connected components of the prediction (ids in
    /// raster order of first pixels, as `segment --instances components` numbers them). Its class is the one
    /// predicted most over it unless `targetClass` says otherwise.
    public var object: Int?
    public var outputs: Set<ExplainOutput> = [.heatmap, .overlay, .raw]
    public var colormap = Colormap.jet
    public var alpha: Float = 0.5
    /// `png` (16-bit) or `npy`.
    public var rawFormat = CAMMapFormat.png
    public var overlayFormat = OverlayFormat.png
    /// Occlusion patch and step (pixels).
    public var patch: Int?
    public var stride: Int?
    /// Explain a segmenter by tiles of this edge (`TiledCAM`: images of any size, outputs streamed as tiled
    /// TIFFs); nil: the whole image at once.
    public var tile: Int?
    public var overlap = 0.5
    /// LIME: superpixels asked of SLIC and their compactness, how hidden ones are filled, perturbed copies, the
    /// seed of which are hidden (with the input's path), and how many of the best superpixels the report lists.
    public var segments = 100
    public var compactness = 10.0
    public var fill = LIMEFill.mean
    public var samples = 1000
    public var seed = 0
    public var topK = 5
    /// Ground-truth masks: the report gives the share of the map on the explained class's pixels plus `band`.
    public var masks: URL?
    public var band = 2
    /// Faithfulness scores per image, each beside the same score of a random map (none by default: they cost a
    /// hundred or more forward passes per image).
    public var metrics: Set<FaithfulnessMetric> = []
    /// Methods run on the same inputs and ranked by faithfulness (`ExplainComparison`); empty: `method` alone.
    public var compare: Set<CAMMethod> = []
    /// Largest image explained in one pass (the whole image goes through forward and backward at once).
    public var maxPixels = 4 << 20
    public var mean: [Float]?
    public var std: [Float]?
    public var recursive = false
    public var shard: Shard?
    public var overwrite = false
    public var strict = false
    /// Outputs made by another model or other settings are recomputed instead of stopping the run (`tessera run`,
    /// whose folders are its own).
    public var recomputeStale = false

    public init() {}

    /// The defaults, which the command line's options start from too.
    public static let defaults = ExplainOptions()

    /// The largest box coordinate and edge.
    public static let boxLimit = 1 << 24

    /// Every option of `tessera explain` and the pipeline's `explain` section.
    public static var table: OptionTable<ExplainOptions> {
        OptionTable(
            stage: "explain",
            [
                .flag("recursive", \.recursive, help: "Descend into sub-folders."),
                .choice("method", \.method, help: "Attribution method."),
                .text("layer", \.layer, help: "Layer by dotted path (default: the last convolutional stage)."),
                .text(
                    "class", \.targetClass,
                    help: "Class index or name (default: top-1 / most predicted non-background class)."),
                .path(
                    "target_mask", \.targetMask,
                    help:
                        "Segmentation target region: a mask PNG (nonzero = region), or a folder of them by relative path."
                ),
                boxOption,
                .integer(
                    "object", \.object, 1...Int(UInt32.max),
                    help:
                        "Explain one object: its pixels in --target-mask (segment --instances' instances/ folder), or object ID of the prediction's connected components."
                ),
                .choice("colormap", \.colormap, help: "Heatmap colours."),
                .number("alpha", \.alpha, .closed(0, 1), help: "Weight of the heatmap in the overlay."),
                .choices("outputs", \.outputs, help: "Outputs, comma-separated."),
                .choice("raw_format", \.rawFormat, help: "Raw map format: png (16-bit) or npy (float32)."),
                .choice("overlay_format", \.overlayFormat, help: "Overlay file format."),
                .integer(
                    "patch", \.patch, 1...65536,
                    help: "Occlusion patch edge in pixels (default: an eighth of the shorter side)."
                ),
                .integer("stride", \.stride, 1...65536, help: "Occlusion step in pixels (default: half the patch)."),
                .integer(
                    "tile", \.tile, 16...65536,
                    help:
                        "Explain by tiles of this edge, for images of any size (whole slides; outputs are tiled TIFFs; default class: the first after background)."
                ),
                .number("overlap", \.overlap, .openAbove(0, 1), help: "Fraction of a tile shared with its neighbour."),
                .integer("segments", \.segments, 1...10000, help: "LIME: superpixels asked of SLIC."),
                .number(
                    "compactness", \.compactness, .openBelow(0, 1000),
                    help: "LIME: SLIC's compactness (higher: squarer superpixels; on CIELAB, 10 is SLIC's default)."
                ),
                .choice("fill", \.fill, help: "LIME: what a hidden superpixel shows."),
                .integer(
                    "samples", \.samples, 2...100_000, help: "LIME: perturbed copies scored (lime's default 1000)."),
                .integer(
                    "seed", \.seed, 0...Int(UInt32.max),
                    help: "LIME: seed of the perturbations (with the input's path)."),
                .integer("top_k", \.topK, 1...10000, help: "LIME: superpixels listed in the report, best first."),
                .path(
                    "masks", \.masks,
                    help: "Ground-truth masks (same relative paths): report the map's share on the class's pixels."),
                .integer("band", \.band, 0...4096, help: "Band around the true pixels counted with them, in pixels."),
                .choices(
                    "metrics", \.metrics, allowsEmpty: true,
                    help: "Faithfulness scores in the report, each beside a random map's, comma-separated."),
                .choices(
                    "compare", \.compare, allowsEmpty: true,
                    help:
                        "Run these methods (instead of --method) on the same inputs, each in OUT/METHOD/, and rank them by faithfulness in OUT/compare.csv."
                ),
                .integer(
                    "max_pixels", \.maxPixels, 1...(1 << 32),
                    help: "Largest image explained (pixels); larger ones are reported as failed."),
                .numbers(
                    "mean", \.mean, .closed(-1e6, 1e6),
                    help: "Normalisation mean per channel, comma-separated (default: the model's)."),
                .numbers(
                    "std", \.std, .openBelow(0, 1e6),
                    help: "Normalisation std per channel, comma-separated (default: the model's)."),
                Shard.option(\.shard),
                .flag("overwrite", \.overwrite, help: "Recompute outputs that already exist.").commandLineOnly,
                .flag("strict", \.strict, help: "Stop at the first image that cannot be explained.").commandLineOnly
            ])
    }

    /// `--box X,Y,WIDTH,HEIGHT`: x and y at least 0, a positive size, each at most `boxLimit`.
    static var boxOption: OptionSpec<ExplainOptions> {
        OptionSpec(
            "box", kind: .integers(count: 4, 0...boxLimit),
            help: "Segmentation target region as a box X,Y,WIDTH,HEIGHT in image pixels.",
            read: { o, text in
                let v = try Parse.list(text).map { Int($0) }
                guard v.count == 4, let x = v[0], let y = v[1], let w = v[2], let h = v[3] else {
                    throw OptionProblem(boxReason + ", not '\(text)'")
                }
                o.box = PixelWindow(x: x, y: y, width: w, height: h)
            },
            check: { boxProblem($0.box) },
            show: { $0.box.map { "\($0.x),\($0.y),\($0.width),\($0.height)" } })
    }

    static func boxProblem(_ b: PixelWindow?) -> String? {
        guard let b else { return nil }
        let limit = boxLimit
        let ok =
            b.x >= 0 && b.y >= 0 && (1...limit).contains(b.width) && (1...limit).contains(b.height) && b.x <= limit
            && b.y <= limit
        return ok ? nil : boxReason + ", is \(b.x),\(b.y),\(b.width),\(b.height)"
    }

    static let boxReason = "takes X,Y,WIDTH,HEIGHT: x, y >= 0, a positive size, each at most 2^24"

    /// Refuses the first value out of its range and settings that do not go together.
    public func validate() throws {
        try Self.table.validate(self)
        if object != nil && box != nil { throw OptionError(option: "object", reason: "and box: give one, not both") }
        if tile != nil {
            guard TiledCAM.methods.contains(method) else {
                throw OptionError(
                    option: "tile",
                    reason: "runs \(TiledCAM.methods.map(\.rawValue).joined(separator: ", ")), not \(method.rawValue)")
            }
            guard targetMask == nil && object == nil && masks == nil && metrics.isEmpty && compare.isEmpty else {
                throw OptionError(
                    option: "tile",
                    reason: "takes a --box or the predicted pixels as the target region, not "
                        + "--target-mask, --object, --masks, --metrics or --compare")
            }
        }
    }
}
