import Foundation
import TesseraData
import TesseraEngine
import TesseraObjects

/// What truth masks (`--masks`) hold.
public enum TruthKind: String, Codable, CaseIterable, Sendable {
    /// Class ids (the checkpoint's mask kind): pixel metrics, and objects made the way predictions are.
    case classes
    /// Object ids (an instance label image, 8 or 16-bit, 0 none): object scores only, any class matching any.
    case objects
}

extension SegmentRun {
    var instanceStage: InstanceStage? {
        options.instances.map {
            InstanceStage(settings: $0, classNames: loaded.info.classNames, chunk: options.chunk)
        }
    }

    /// `OUT/instances/<rel>.png` (16-bit) or `.tif` (16 or 32-bit, a page per slice).
    public func instancesURL(relative: String) -> URL {
        let stem = (relative as NSString).deletingPathExtension
        let ext = outputFormat(for: relative) == .tiff ? "tif" : "png"
        return outDirectory.appendingPathComponent("instances/" + stem + "." + ext)
    }

    /// The probabilities the streamed watershed reads: the `prob` output, or a scratch file beside the instances.
    func watershedProbabilityURL(relative: String) -> URL {
        if options.outputs.contains(.prob) { return outputURL(.prob, relative: relative) }
        let url = instancesURL(relative: relative)
        return url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".prob.tif")
    }

    /// `OUT/objects/<rel>.csv`.
    public func objectsURL(relative: String) -> URL {
        outDirectory.appendingPathComponent("objects/" + (relative as NSString).deletingPathExtension + ".csv")
    }

    /// What the instances of one image gave the report.
    struct InstanceResult {
        var counts: [Int]
        var metrics: [String: Double]
    }

    /// The instance settings as provenance records them (only when instances are asked for, so folders made
    /// without them keep matching).
    static func instanceSettings(_ options: SegmentOptions) -> [String: String] {
        guard let s = options.instances else { return [:] }
        var text = "\(s.method.rawValue),connectivity=\(s.connectivity.rawValue),min_size=\(s.minSize)"
        text += ",max_hole=\(s.maxHole),exclude_border=\(s.excludeBorder)"
        if s.method == .watershed { text += ",seeds=\(s.seeds.rawValue),seed_depth=\(s.depth)" }
        if s.method == .membrane { text += ",seed_depth=\(s.depth)" }
        return ["instances": text]
    }

    /// One slice's object scores against its truth: class ids made into objects, or object ids as they are.
    func score(ids: [UInt32], classes: [Int], truth: [Int32], width w: Int, height h: Int) -> [String: Double] {
        guard let stage = instanceStage else { return [:] }
        if options.truth == .objects {
            return SegmentationAgreement(
                truth: truth.map { UInt32(clamping: max(0, $0)) }, prediction: ids, width: w, height: h
            ).metrics
        }
        return stage.agreement(ids: ids, classes: classes, truth: truth, width: w, height: h)
    }

    /// The decoder of truth masks: the checkpoint's mask kind, or plain ids for object truth.
    var truthDecoder: MaskDecoder {
        options.truth == .objects
            ? MaskDecoder(kind: .label)
            : MaskDecoder(kind: maskKind, classes: classes)
    }

    /// The report's object numbers of an image whose outputs an earlier run completed: counts from its objects
    /// table, scores from its label image.
    func rescoreInstances(relative: String, truth: PixelSource?, truthDecoder: MaskDecoder) throws -> InstanceResult {
        guard let stage = instanceStage else { return InstanceResult(counts: [], metrics: [:]) }
        let classes = try stage.classes(fromTable: objectsURL(relative: relative))
        var scores: [[String: Double]] = []
        if let truth {
            let url = instancesURL(relative: relative)
            let saved = try PixelSource(url: url) { try ImageCodec.decode($0) }
            guard saved.width == truth.width, saved.height == truth.height, saved.slices == truth.slices else {
                throw FileError(
                    file: url.path,
                    reason: "the label image is \(saved.width)x\(saved.height) (\(saved.slices) slices), its truth "
                        + "mask \(truth.width)x\(truth.height) (\(truth.slices))")
            }
            let full = PixelWindow(x: 0, y: 0, width: saved.width, height: saved.height)
            for s in 0..<saved.slices {
                let image = try saved.window(full, slice: s)
                let ids = (0..<(saved.width * saved.height)).map {
                    UInt32(clamping: image.sample(x: $0 % saved.width, y: $0 / saved.width, channel: 0))
                }
                guard s < classes.count, ids.allSatisfy({ Int($0) <= classes[s].count }) else {
                    throw FileError(file: url.path, reason: "ids do not match its objects table")
                }
                let labels = try truthDecoder.labels(from: try truth.window(full, slice: s), file: truth.file)
                scores.append(
                    score(ids: ids, classes: classes[s], truth: labels, width: saved.width, height: saved.height))
            }
        }
        return InstanceResult(counts: stage.counts(classes), metrics: SegmentationAgreement.mean(scores))
    }
}
